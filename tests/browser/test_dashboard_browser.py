"""The dashboard in a real browser: charts fill while a real worker runs tasks, without a reload.

Headless Chromium against a live test server (see test_admin_browser.py for
what it needs).  The page refreshes itself from its JSON endpoint, stops
while the tab is hidden and starts again when shown; the hour/day switch
fetches the other window in place.  The test also takes the dashboard's
screenshot the README shows: ``AUTOTASK_TEST_SCREENSHOT_DIR=docs`` writes
it to ``docs/dashboard.png``.
"""

import os
import time
from pathlib import Path

import pytest

from autotask import dashboard
from autotask.models import Schedule
from tests.app import tasks
from tests.browser.test_admin_browser import browser, css, until  # noqa: F401 - a fixture
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = "dashboard.png"
FINISHED, FAILED = 20, 3  # tasks the test runs to completion / to failure
SLOW_SECONDS = 15  # the task the workers table shows running (it is stopped with the worker)
# Counts fetches of the page's script, and marks the page: a reload would lose both.
WATCH_FETCHES = """
window.autotaskFetches = 0;
const original = window.fetch;
window.fetch = function () { window.autotaskFetches += 1; return original.apply(this, arguments); };
"""


def shown(driver, outcome):
    """The count of ``outcome`` the dashboard shows (-1 before the body is there)."""
    found = css(driver, f"#autotask-dashboard-body strong[data-outcome='{outcome}']")
    return int(found[0].text) if found else -1


def fetches(driver):
    return driver.execute_script("return window.autotaskFetches")


@pytest.fixture
def site(worker_process, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "secret")
    worker_process("--concurrency", "2", env={"AUTOTASK_TEST_SCHEDULES": "tests.app.scheduled_cron"})
    wait_for(lambda: Schedule.objects.exists(), message="the worker's cron schedule")


def test_charts_fill_live_pause_while_hidden_and_switch_to_the_day(browser, live_server, site, tmp_path):  # noqa: F811
    page_url = f"{live_server.url}/admin/autotask/taskqueue/dashboard/"
    browser.get(f"{live_server.url}/admin/login/?next=/admin/autotask/taskqueue/dashboard/")
    css(browser, "#id_username")[0].send_keys("admin")
    css(browser, "#id_password")[0].send_keys("secret")
    css(browser, "input[type=submit]")[0].click()
    until(browser, lambda d: d.current_url == page_url, "the dashboard after logging in")
    browser.execute_script(WATCH_FETCHES)
    # The cron task of the fixture may have run already (every minute): counted from here.
    done_before = shown(browser, "done")
    assert done_before >= 0 and shown(browser, "error") == 0

    # Tasks run while the page is open: the charts fill without a reload.
    handles = [tasks.add(i, i) for i in range(FINISHED)] + [tasks.boom() for _ in range(FAILED)]
    slow = tasks.sleep_then_record("dashboard", SLOW_SECONDS)
    tasks.add.using(delay=3600, queue="reports")(1, 1)
    wait_for(lambda: all(h.ready for h in handles), timeout=30, message="the tasks to finish")
    until(
        browser,
        lambda d: shown(d, "done") >= done_before + FINISHED and shown(d, "error") == FAILED,
        "the finished and failed tasks on the dashboard",
    )
    assert css(browser, "#autotask-throughput rect.autotask-c-done")
    assert css(browser, "#autotask-failures rect.autotask-c-error")
    assert css(browser, "#autotask-run circle.autotask-c-p95")
    assert css(browser, "#autotask-pickup circle.autotask-c-p50")
    until(
        browser,
        lambda d: f"#{slow.pk} tests.app.tasks.sleep_then_record" in css(d, "#autotask-workers")[0].text,
        "the slow task under its worker",
    )
    assert "reports" in css(browser, "#autotask-depth")[0].text
    assert "scheduled_cron" in css(browser, "#autotask-schedules")[0].text
    assert fetches(browser) >= 1  # refreshed by the script, the page never reloaded
    screenshot(browser, tmp_path)

    # Another tab in front hides the page: no fetch for two refresh periods; back in front: at once.
    before, dashboard_tab = fetches(browser), browser.current_window_handle
    browser.execute_script(
        "window.autotaskHidden = []; document.addEventListener("
        "'visibilitychange', () => window.autotaskHidden.push(document.hidden));"
    )
    browser.switch_to.new_window("tab")
    hidden_at = time.monotonic()
    # The absence of a fetch is seen only over time: this waits the two periods out, polling.
    until(browser, lambda d: time.monotonic() - hidden_at > 2 * dashboard.REFRESH_SECONDS["hour"], "time")
    browser.close()
    browser.switch_to.window(dashboard_tab)
    assert browser.execute_script("return window.autotaskHidden") == [True, False]  # hidden, then shown
    # Exactly one more: none while hidden, one on showing (the next period's is 5 s away).
    until(browser, lambda d: fetches(d) == before + 1, "a refresh on showing the tab")
    until(browser, lambda d: "Updated" in css(d, "#autotask-dashboard-status")[0].text, "the refresh done")

    # The day: the switch fetches the other window in place.
    css(browser, ".autotask-windows a[data-window='day']")[0].click()
    until(browser, lambda d: css(d, "#autotask-dashboard-body [data-window='day']"), "the day's figures")
    assert browser.current_url == page_url + "?window=day"
    assert css(browser, ".autotask-windows a[aria-current]")[0].get_attribute("data-window") == "day"
    assert shown(browser, "done") >= done_before + FINISHED
    assert css(browser, "#autotask-refresh-seconds")[0].text == str(dashboard.REFRESH_SECONDS["day"])
    assert fetches(browser) >= before + 2  # still the same page

    # Logged out meanwhile: the page says so, and keeps its last figures.
    browser.delete_all_cookies()
    css(browser, ".autotask-windows a[data-window='hour']")[0].click()  # a refresh now
    until(
        browser,
        lambda d: "you are logged out" in css(d, "#autotask-dashboard-status")[0].text,
        "the refused refresh reported",
    )
    assert "autotask-bad" in css(browser, "#autotask-dashboard-status")[0].get_attribute("class")
    assert shown(browser, "done") >= done_before + FINISHED


def screenshot(browser, tmp_path):  # noqa: F811 - the driver, not the fixture
    """Save the dashboard for the README, without the navigation sidebar."""
    toggle = css(browser, "#toggle-nav-sidebar")
    if toggle and css(browser, "#nav-sidebar")[0].is_displayed():
        toggle[0].click()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height + 120, 2400))
    target = Path(os.environ.get("AUTOTASK_TEST_SCREENSHOT_DIR") or tmp_path) / SCREENSHOT
    target.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000
    browser.set_window_size(1400, 900)
