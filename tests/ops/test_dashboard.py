"""The admin dashboard's page and JSON endpoint: permissions, windows, figures drawn, links, queries."""

import html as html_lib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import trans_real

from autotask import dashboard, monitor
from autotask.models import Schedule, TaskStats, Worker
from autotask.task import RUNNING, WAITING
from tests.ops.test_admin import make_task
from tests.ops.test_admin_translation import TRANSLATED, Pseudo

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:autotask_taskqueue_dashboard")
DATA = reverse("admin:autotask_taskqueue_dashboard_data")
LIST = reverse("admin:autotask_taskqueue_changelist")
MAX_QUERIES = 8  # session, user, monitor.dashboard()'s six: none per task, worker or minute


def user_with(*codenames, staff=True):
    user = User.objects.create_user("viewer", password="pw", is_staff=staff)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="autotask", codename__in=codenames)
    )
    return user


def busy_queue():
    """A worker running a task, tasks waiting in two queues, a failure counted this minute, a schedule."""
    now = timezone.now()
    Worker.objects.create(
        worker_id="host:7:abc", hostname="host", pid=7, queues="default,mail", concurrency=4, last_seen=now
    )
    running = make_task(RUNNING, function="tests.app.tasks.slow", worker_id="host:7:abc")
    make_task(WAITING, queue="mail")
    make_task(WAITING, queue="<script>", scheduled_at=now + timedelta(hours=1))
    minute = now.replace(second=0, microsecond=0)
    TaskStats.objects.create(minute=minute, worker_id="host:7:abc", queue="default", outcome="done", count=7)
    TaskStats.objects.create(minute=minute, worker_id="host:7:abc", queue="default", outcome="error", count=2)
    Schedule.objects.create(
        name="tests.app.tasks.add", kind="periodic", spec="every 60s", next_run_at=now + timedelta(seconds=30)
    )
    return running


# -- permissions -------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, DATA])
def test_anonymous_is_sent_to_the_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url", [PAGE, DATA])
def test_staff_without_the_view_permission_is_refused(client, url):
    client.force_login(user_with("view_schedule"))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", [PAGE, DATA])
def test_a_user_not_staff_is_sent_to_the_login_even_with_the_permission(client, url):
    client.force_login(user_with("view_taskqueue", staff=False))
    assert client.get(url).status_code == 302


@pytest.mark.parametrize("url", [PAGE, DATA])
def test_the_view_permission_alone_is_enough(client, url):
    client.force_login(user_with("view_taskqueue"))
    assert client.get(url).status_code == 200


# -- the page ----------------------------------------------------------------


def test_page_draws_the_charts_tables_and_the_refresh_hooks(admin_client):
    running = busy_queue()
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    for section in ("throughput", "failures", "pickup", "run", "depth", "workers", "schedules"):
        assert f'id="autotask-{section}"' in html
    assert html.count('<svg class="autotask-chart') == 5
    assert 'class="autotask-c-error"' in html and 'class="autotask-c-done"' in html
    assert f'data-url="{DATA}"' in html and 'data-window="hour"' in html
    assert "autotask/dashboard.js" in html and "autotask/dashboard.css" in html
    assert 'href="?window=hour" data-window="hour" aria-current="page"' in html
    assert reverse("admin:autotask_taskqueue_change", args=[running.pk]) in html
    assert "tests.app.tasks.slow" in html and "every 60s" in html
    assert "&lt;script&gt;" in html and "<script>" not in html.split("</head>")[1]  # a queue name, escaped
    assert "//cdn" not in html and "https://" not in html.split("</head>")[0]  # nothing from elsewhere


def test_page_of_the_day(admin_client):
    response = admin_client.get(PAGE, {"window": "day"})
    assert response.status_code == 200
    assert 'href="?window=day" data-window="day" aria-current="page"' in response.content.decode()
    assert response.context["refresh_seconds"] == dashboard.REFRESH_SECONDS["day"]


def test_an_empty_queue_says_so(admin_client):
    html = admin_client.get(PAGE).content.decode()
    assert "No task finished in the last hour." in html
    assert "No task is waiting or running." in html
    assert "No worker is alive" in html
    assert "No periodic or cron task is registered." in html


@pytest.mark.parametrize("url", [PAGE, DATA])
def test_an_unknown_window_is_a_clear_400(admin_client, url):
    response = admin_client.get(url, {"window": "week"})
    assert response.status_code == 400
    assert "window must be one of hour, day, not 'week'" in response.content.decode()


def test_task_list_and_app_index_link_to_the_dashboard(admin_client):
    assert f'href="{PAGE}"' in admin_client.get(LIST).content.decode()
    assert f'href="{PAGE}"' in admin_client.get(reverse("admin:app_list", args=["autotask"])).content.decode()


@pytest.mark.parametrize("name", ["dashboard.html", "dashboard_body.html", "app_index.html"])
def test_every_word_of_the_templates_is_marked_for_translation(name):
    text = (Path(dashboard.__file__).parent / "templates/admin/autotask" / name).read_text()
    text = re.sub(r"{% blocktranslate.*?{% endblocktranslate %}", "", text, flags=re.S)
    text = re.sub(r"{% block bodyclass %}.*?{% endblock %}", "", text)  # CSS classes, not words
    text = re.sub(r"{%.*?%}|{{.*?}}|<[^>]*>|&\w+;", " ", text, flags=re.S)
    assert re.findall(r"[A-Za-z]{2,}", text) == []


AS_STORED = re.compile(
    r"[\w-]+(\.[\w-]+)+"  # dotted paths
    r"|#?\d[\w.:/-]*"  # ids, numbers, dates and times, host:pid
    r"|\b(ms|s|min|p50|p95)\b"  # units and percentiles
    r"|\b(host|default|mail|script|every)\b",  # this test's host, queues and schedule spec
)


def test_every_string_shown_is_translated(admin_client):
    busy_queue()
    translation.activate("en")
    trans_real._active.value = Pseudo()
    try:
        page = admin_client.get(PAGE).content.decode()
        refreshed = json.loads(admin_client.get(DATA, {"window": "day"}).content)["html"]
    finally:
        translation.deactivate()
    region = page[page.index('<div id="autotask-dashboard"') : page.index("<!-- END Content -->")]
    for text in (region, refreshed):
        text = re.sub(r"<[^>]*?(?:title|aria-label|data-text-\w+)=\"([^\"]*)\"[^>]*>", r" \1 ", text)
        text = html_lib.unescape(re.sub(r"<[^>]*>", " ", text))
        while TRANSLATED.search(text):
            text = TRANSLATED.sub(" ", text)
        left = AS_STORED.sub(" ", text)
        assert re.findall(r"[^\W\d_]{2,}", left) == []


# -- the JSON endpoint -------------------------------------------------------


def test_data_returns_the_figures_and_the_body_drawn_from_them(admin_client):
    busy_queue()
    response = admin_client.get(DATA)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    answer = json.loads(response.content)
    assert set(answer) == {"figures", "html", "updated", "refresh_seconds"}
    figures = answer["figures"]
    assert figures["window"] == "hour" and len(figures["series"]["t"]) == 60
    assert figures["series"]["done"][-1] == 7 and figures["series"]["error"][-1] == 2
    assert {row["queue"]: row["waiting"] for row in figures["depth"]} == {
        "<script>": 1,
        "mail": 1,
        "default": 0,
    }
    assert answer["html"].count('<svg class="autotask-chart') == 5
    assert '<strong data-outcome="done">7</strong>' in answer["html"]
    assert answer["refresh_seconds"] == dashboard.REFRESH_SECONDS["hour"]
    day = json.loads(admin_client.get(DATA, {"window": "day"}).content)
    assert day["figures"]["window"] == "day" and day["figures"]["series"]["done"][-1] == 7


def test_data_costs_a_few_queries_whatever_the_number_of_rows(admin_client):
    busy_queue()
    admin_client.get(DATA)  # warm the session and the content types
    with CaptureQueriesContext(connection) as few:
        admin_client.get(DATA)
    for index in range(30):
        make_task(RUNNING, function=f"tests.app.tasks.t{index}", worker_id="host:7:abc")
        make_task(WAITING, queue=f"q{index}")
    with CaptureQueriesContext(connection) as many:
        admin_client.get(DATA)
    assert len(many) == len(few) <= MAX_QUERIES


def test_body_uses_the_windows_of_monitor():
    assert set(dashboard.REFRESH_SECONDS) == set(monitor.WINDOWS) == set(dashboard.TIME_FORMATS)


@pytest.mark.parametrize(
    ("zone", "last"), [("UTC", "12:30"), ("Europe/Berlin", "13:30"), ("America/New_York", "07:30")]
)
def test_times_are_shown_in_the_current_time_zone(settings, zone, last):
    if not settings.USE_TZ:
        pytest.skip("naive datetimes are shown as stored")
    now = datetime(2026, 12, 4, 12, 30, 20, tzinfo=UTC)
    with timezone.override(zone):
        context = dashboard.body_context(monitor.dashboard("hour", now=now), "admin")
        day = dashboard.body_context(monitor.dashboard("day", now=now), "admin")
    assert f">{last}</text>" in str(context["throughput"])
    assert f"Fri {last}</text>" in str(day["throughput"])
