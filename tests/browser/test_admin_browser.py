"""The admin in a real browser: log in, filter, open a failed task, press its buttons, see them work.

Headless Chromium (Debian packages ``chromium`` and ``chromium-driver``)
drives the admin of a live test server while a real worker process runs
the tasks.  The test also takes the screenshots of the task list and of a
task's page the README and the docs show: ``AUTOTASK_TEST_SCREENSHOT_DIR=docs``
writes them to ``docs/admin-list.png`` and ``docs/admin-task.png`` (by
default they go to the test's temporary directory).
"""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry

from autotask.models import Schedule, TaskQueue
from autotask.task import DONE, ERROR
from tests.app import tasks
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
# Flags for a sandbox-less container: no GPU, no network chatter of the browser's own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
WIDTH = 1280  # the admin fits this wide a window without scrolling sideways
PAGE_TIMEOUT = 30  # seconds a page or element may take on a loaded CI machine
SCREENSHOTS = {"list": "admin-list.png", "task": "admin-task.png"}


def _missing():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install selenium)"
    if not (CHROMIUM and CHROMEDRIVER):
        return "Chromium is not installed (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def browser(tmp_path):
    missing = _missing()
    if missing and IN_CI:
        pytest.fail(f"the browser test must run in CI, but {missing}")
    if missing:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")  # a fresh profile
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


def until(driver, condition, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PAGE_TIMEOUT).until(condition, message)


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def xpath(driver, expression):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, expression)


def row_status(driver, pk):
    """The status text of task ``pk`` in the list on screen ('' when it is not listed)."""
    for row in css(driver, "#result_list tbody tr"):
        if css(row, "input.action-select")[0].get_attribute("value") == str(pk):
            return css(row, "td.field-status_display .autotask-status")[0].text
    return ""


@pytest.fixture
def site(worker_process, django_user_model, tmp_path):
    """A superuser, a worker (with a cron schedule) and tasks in several states."""
    django_user_model.objects.create_superuser("admin", "admin@example.com", "secret")
    worker_process("--concurrency", "2", env={"AUTOTASK_TEST_SCHEDULES": "tests.app.scheduled_cron"})
    marker = tmp_path / "markers"
    marker.mkdir()
    failing = tasks.flaky.using(retries=0)(str(marker), 1)  # fails once: its retry succeeds
    handles = [
        tasks.add(2, 3),
        tasks.echo.using(queue="mail")("ada@example.com", subject="Welcome"),
        tasks.async_add(4, 5),
        tasks.boom.using(queue="reports")(),
    ]
    tasks.add.using(delay=3600)(1, 1)
    tasks.add.using(delay=7200, queue="mail")(2, 2).cancel()
    wait_for(lambda: failing.ready and all(h.ready for h in handles), timeout=30, message="the first tasks")
    wait_for(lambda: Schedule.objects.exists(), message="the worker's cron schedule")
    assert failing.status == ERROR
    return failing


def fits_the_width(driver):
    """Assert that neither the page nor the list's own scroll box scrolls sideways."""
    widths = driver.execute_script(
        "const e = document.documentElement, r = document.querySelector('#changelist .results');"
        "return [e.scrollWidth, e.clientWidth, r ? r.scrollWidth : 0, r ? r.clientWidth : 0];"
    )
    page, window, results, box = widths
    assert page <= window, f"the page scrolls sideways: {page} px wide in a {window} px window"
    assert results <= box, f"the list scrolls sideways: {results} px wide in a {box} px box"


def press(driver, slug):
    """Press a button on a task's page; return the message it reports."""
    css(driver, f"button.autotask-button-{slug}")[0].click()
    return until(driver, lambda d: css(d, ".messagelist li"), f"the {slug} button's report")[0].text


def screenshot(driver, name, tmp_path, max_height=2400):
    """Save a screenshot of the page (without the navigation sidebar) for the README and docs."""
    toggle = css(driver, "#toggle-nav-sidebar")
    if toggle and css(driver, "#nav-sidebar")[0].is_displayed():
        toggle[0].click()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(height + 120, max_height))  # room for the window frame
    target = Path(os.environ.get("AUTOTASK_TEST_SCREENSHOT_DIR") or tmp_path) / SCREENSHOTS[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000
    driver.set_window_size(WIDTH, 900)
    if toggle and not css(driver, "#nav-sidebar")[0].is_displayed():
        toggle[0].click()  # the sidebar open again, as the next page expects it


def test_log_in_filter_open_retry_and_see_it_done(browser, live_server, site, tmp_path):
    failing = site
    list_url = f"{live_server.url}/admin/autotask/taskqueue/"
    # A row as long as real ones get: a deep module path and a long error (no worker runs it).
    TaskQueue.objects.create(
        function="shop.integrations.payment_providers.reconciliation.tasks.reconcile_settlement_batches",
        queue="payments",
        status=ERROR,
        attempts=3,
        max_attempts=3,
        error_message=(
            "ConnectionError: HTTPSConnectionPool(host='api.payments.example.com', port=443): Max retries "
            "exceeded with url: /v2/settlements?batch=2026-12-04&page=17 (Caused by NewConnectionError())"
        ),
    )

    # Log in.
    browser.get(f"{live_server.url}/admin/login/?next=/admin/autotask/taskqueue/")
    css(browser, "#id_username")[0].send_keys("admin")
    css(browser, "#id_password")[0].send_keys("secret")
    css(browser, "input[type=submit]")[0].click()
    until(browser, lambda d: d.current_url == list_url, "the task list after logging in")
    assert "workers alive\n1" in css(browser, ".autotask-summary")[0].text.lower()
    fits_the_width(browser)  # with the navigation sidebar and the filters beside the list

    # Filter by status: only the failed tasks are listed.
    xpath(browser, "//*[@id='changelist-filter']//a[normalize-space()='Error']").click()
    until(browser, lambda d: f"status__exact={ERROR}" in d.current_url, "the Error filter")
    listed = {row_status(browser, t.pk) for t in TaskQueue.objects.all()} - {""}
    assert listed == {"Error"}
    assert row_status(browser, failing.pk) == "Error"

    # Open the failed task: its error and traceback are readable.
    xpath(browser, f"//th[contains(@class, 'field-id')]/a[normalize-space()='{failing.pk}']").click()
    page_url = f"{list_url}{failing.pk}/change/"
    until(browser, lambda d: d.current_url.startswith(page_url), "the failed task's page")
    traceback = css(browser, "pre.autotask-traceback")[0].text
    assert "RuntimeError: failure 1" in traceback and traceback.startswith("Traceback")
    assert '"args": [' in css(browser, "pre.autotask-json")[0].text
    assert [b.text for b in css(browser, ".autotask-buttons button")] == ["Retry", "Run again"]
    fits_the_width(browser)
    screenshot(browser, "task", tmp_path, max_height=1500)  # the buttons, the error, the timing

    # Retry it with its button: the worker runs it again, the page shows it done.
    assert press(browser, "retry") == f"Retried task #{failing.pk}: it waits again, due now."
    assert browser.current_url == page_url
    wait_for(lambda: failing.status == DONE, timeout=30, message="the retried task to finish")
    assert failing.result == 1 and failing.attempts == 2
    browser.get(page_url)
    assert css(browser, ".field-status .readonly")[0].text == "Done"
    assert [b.text for b in css(browser, ".autotask-buttons button")] == ["Run again"]

    # Run it again: a new task with the same call, whose page the browser goes to.
    message = press(browser, "run-again")
    new = TaskQueue.objects.exclude(pk=failing.pk).filter(function=tasks.flaky.name).get()
    assert message == f"Enqueued task #{new.pk}, a new run of task #{failing.pk}."
    assert browser.current_url == f"{list_url}{new.pk}/change/"
    wait_for(lambda: TaskQueue.objects.get(pk=new.pk).status == DONE, timeout=30, message="the new run")
    assert LogEntry.objects.filter(object_id__in=[str(failing.pk), str(new.pk)]).count() == 3

    # Retry the other failed task with the list's action.
    browser.get(f"{list_url}?status__exact={ERROR}")
    boom = TaskQueue.objects.get(function=tasks.boom.name)
    css(browser, f"input.action-select[value='{boom.pk}']")[0].click()
    xpath(browser, "//select[@name='action']/option[@value='retry_failed']").click()
    css(browser, "button[name=index]")[0].click()
    message = until(browser, lambda d: css(d, ".messagelist .success"), "the action's report")[0]
    assert message.text == "Retried 1 task."
    wait_for(lambda: TaskQueue.objects.get(pk=boom.pk).attempts == 2, timeout=30, message="boom's second run")

    # The list shows every task, done and failed, within the window; its screenshot for the README.
    browser.get(list_url)
    assert row_status(browser, failing.pk) == "Done" and row_status(browser, new.pk) == "Done"
    fits_the_width(browser)
    screenshot(browser, "list", tmp_path)
