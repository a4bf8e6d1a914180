"""The admin in a real browser: log in, filter, open a failed task, retry it, see it done.

Headless Chromium (Debian packages ``chromium`` and ``chromium-driver``)
drives the admin of a live test server while a real worker process runs
the tasks.  The test also takes the screenshot of the task list the README
shows: ``AUTOTASK_TEST_SCREENSHOT_DIR=docs`` writes it to ``docs/admin-list.png``
(by default it goes to the test's temporary directory).
"""

import os
import shutil
from pathlib import Path

import pytest

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
    "--window-size=1400,900",
)
PAGE_TIMEOUT = 30  # seconds a page or element may take on a loaded CI machine
SCREENSHOT = "admin-list.png"


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
            return css(row, "td.field-status_display")[0].text
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


def test_log_in_filter_open_retry_and_see_it_done(browser, live_server, site, tmp_path):
    failing = site
    list_url = f"{live_server.url}/admin/autotask/taskqueue/"

    # Log in.
    browser.get(f"{live_server.url}/admin/login/?next=/admin/autotask/taskqueue/")
    css(browser, "#id_username")[0].send_keys("admin")
    css(browser, "#id_password")[0].send_keys("secret")
    css(browser, "input[type=submit]")[0].click()
    until(browser, lambda d: d.current_url == list_url, "the task list after logging in")
    assert "workers alive\n1" in css(browser, ".autotask-summary")[0].text.lower()

    # Filter by status: only the failed tasks are listed.
    xpath(browser, "//*[@id='changelist-filter']//a[normalize-space()='Error']").click()
    until(browser, lambda d: f"status__exact={ERROR}" in d.current_url, "the Error filter")
    listed = {row_status(browser, t.pk) for t in TaskQueue.objects.all()} - {""}
    assert listed == {"Error"}
    assert row_status(browser, failing.pk) == "Error"

    # Open the failed task: its error and traceback are readable.
    xpath(browser, f"//th[contains(@class, 'field-id')]/a[normalize-space()='{failing.pk}']").click()
    until(browser, lambda d: f"/{failing.pk}/change/" in d.current_url, "the failed task's page")
    traceback = css(browser, "pre.autotask-traceback")[0].text
    assert "RuntimeError: failure 1" in traceback and traceback.startswith("Traceback")
    assert '"args": [' in css(browser, "pre.autotask-json")[0].text
    browser.back()
    until(browser, lambda d: f"status__exact={ERROR}" in d.current_url, "back to the filtered list")

    # Retry it with the action.
    css(browser, f"input.action-select[value='{failing.pk}']")[0].click()
    xpath(browser, "//select[@name='action']/option[@value='retry_failed']").click()
    css(browser, "button[name=index]")[0].click()
    message = until(browser, lambda d: css(d, ".messagelist .success"), "the action's report")[0]
    assert message.text == "Retried 1 task."

    # The worker runs it again; the list shows it done.
    wait_for(lambda: failing.status == DONE, timeout=30, message="the retried task to finish")
    assert failing.result == 1 and failing.attempts == 2
    browser.get(list_url)
    assert row_status(browser, failing.pk) == "Done"

    # The screenshot for the README: the whole list, without the navigation sidebar.
    toggle = css(browser, "#toggle-nav-sidebar")
    if toggle and css(browser, "#nav-sidebar")[0].is_displayed():
        toggle[0].click()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height + 120, 2400))  # room for the window frame
    target = Path(os.environ.get("AUTOTASK_TEST_SCREENSHOT_DIR") or tmp_path) / SCREENSHOT
    target.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000
