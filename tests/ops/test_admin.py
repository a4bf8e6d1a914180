"""The admin: list, filters, search, read-only pages, actions, summary, permissions, 10,000 rows."""

import datetime
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.db.models.functions import Mod
from django.urls import reverse
from django.utils import timezone

from autotask import serialization
from autotask.db import get_ops
from autotask.db.base import INSERT_COLUMNS, NewTask
from autotask.enqueue.handle import DelayedTask
from autotask.models import Schedule, TaskQueue, Worker
from autotask.task import CANCELLED, CANCELLED_KEPT, DONE, ERROR, RUNNING, WAITING
from tests.app import tasks

pytestmark = pytest.mark.django_db

LIST = reverse("admin:autotask_taskqueue_changelist")
SCHEDULES = reverse("admin:autotask_schedule_changelist")
WORKERS = reverse("admin:autotask_worker_changelist")
PAGE_SIZE = 100
# session, user, the summary (the status snapshot: counts, workers, schedules, statistics,
# unique keys, pauses), filters, the page, ...: a fixed number, none per row.
MAX_QUERIES = 16
# An action also locks its rows, reads them back for the history and writes it in one INSERT.
ACTION_QUERIES = MAX_QUERIES + 4


def change_url(obj):
    return reverse(f"admin:autotask_{obj._meta.model_name}_change", args=[obj.pk])


def make_task(status=WAITING, function="tests.app.tasks.add", args=((1, 2), {}), **fields):
    now = timezone.now()
    values = {
        "function": function,
        "status": status,
        "args": serialization.encode_call(*args) if isinstance(args, tuple) else args,
        "created_at": now - timedelta(minutes=5),
        "scheduled_at": now - timedelta(minutes=4),
        "attempts": 0 if status == WAITING else 1,
    }
    if status in (DONE, ERROR, CANCELLED):
        values.update(finished_at=now, expires_at=now + timedelta(minutes=5))
    if status == RUNNING:
        values.update(worker_id="host:1:abc", started_at=now, lease_expires_at=now + timedelta(seconds=30))
    values.update(fields)
    return TaskQueue.objects.create(**values)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def act(client, action, objs, follow=True):
    data = {"action": action, "_selected_action": [o.pk for o in objs]}
    return client.post(LIST, data, follow=follow)


def user_with(*codenames, staff=True, name="operator"):
    user = User.objects.create_user(name, password="pw", is_staff=staff)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="autotask", codename__in=codenames)
    )
    return user


# -- the list ----------------------------------------------------------------


def test_list_shows_function_queue_status_words_attempts_times_duration_error_and_age(admin_client):
    started = timezone.now() - timedelta(minutes=1)
    make_task(
        ERROR,
        function="tests.app.tasks.boom",
        queue="mail",
        kind="periodic",
        attempts=2,
        max_attempts=3,
        scheduled_at=datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC),
        started_at=started,
        finished_at=started + timedelta(milliseconds=42),
        error_message="ValueError: the disk is full\nmore detail on the second line",
    )
    response = admin_client.get(LIST)
    assert response.status_code == 200
    html = response.content.decode()
    # The queue under the function; a line may break after a dot or an underscore.
    assert (
        '<span class="autotask-function" title="tests.app.tasks.boom"><span class="autotask-module">'
        "tests.<wbr>app.<wbr>tasks.<wbr></span><strong>boom</strong></span>"
        '<span class="autotask-queue">mail</span>' in html
    )
    assert (
        '<span class="autotask-status autotask-error">Error</span>'
        '<span class="autotask-attempts" title="Attempts started / allowed">2 / 3</span>' in html
    )
    for text in ("42 ms", "5 min"):
        assert f">{text}</td>" in html
    # To the second, the exact instant in the tooltip.
    instant = "2026-03-04T05:06:07+00:00"
    day, time = (
        '<span class="autotask-nowrap">2026-03-04</span>',
        '<span class="autotask-nowrap">05:06:07</span>',
    )
    shown = f'<time datetime="{instant}" title="{instant.replace("T", " ")}">{day} {time}</time>'
    assert shown in html
    tooltip = "ValueError: the disk is full\nmore detail on the second line"
    excerpt = "ValueError: the disk is full"
    assert f'<span class="autotask-error-excerpt" title="{tooltip}">{excerpt}</span>' in html
    for header in ("Function and queue", "Scheduled at", "Status and attempts", "Duration", "Error", "Age"):
        assert header in html


def test_long_function_names_and_errors_are_cut_with_the_whole_value_in_the_tooltip(admin_client):
    function = "project.some_very_long_package_name.deeply.nested.module.send_the_monthly_report"
    make_task(ERROR, function=function, error_message="x" * 5000)
    html = admin_client.get(LIST).content.decode()
    shown = re.search(
        rf'<span class="autotask-function" title="{function}">(.*?)</span><span class="autotask-queue">', html
    ).group(1)
    assert "<strong>send_<wbr>the_<wbr>monthly_<wbr>report</strong>" in shown and "…" in shown
    assert len(re.sub("<[^>]+>", "", shown)) == 48
    excerpt = re.search(r'<span class="autotask-error-excerpt" title="(x*…)">(x*…)</span>', html)
    assert len(excerpt.group(1)) == 1000 and len(excerpt.group(2)) == 60


@pytest.mark.parametrize(
    "seconds, shown",
    [
        (0.0004, "0 ms"),
        (0.0123, "12 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1.0 s"),
        (4.25, "4.2 s"),
        (45, "45 s"),
        (125, "2 min 5 s"),
        (120.2, "2 min"),
        (3 * 3600 + 300, "3 h 5 min"),
    ],
)
def test_duration_reads_in_ms_s_and_min(seconds, shown):
    from autotask.monitor import format_duration

    assert format_duration(seconds) == shown


def test_no_duration_before_a_task_finishes(admin_client):
    make_task(RUNNING)
    make_task(WAITING)
    html = admin_client.get(LIST).content.decode()
    assert html.count('<td class="field-duration">-</td>') == 2


def test_list_tells_a_task_claimed_ahead_from_a_running_one(admin_client):
    make_task(RUNNING, function="tests.app.tasks.boom")
    make_task(RUNNING, function="tests.app.tasks.echo", started_at=None, attempts=0)
    html = admin_client.get(LIST).content.decode()
    assert '<span class="autotask-status autotask-running">Running</span>' in html
    assert (
        '<span class="autotask-status autotask-running">Running (claimed ahead, not started)</span>' in html
    )
    assert '<span class="autotask-attempts" title="Attempts started / allowed">0 / 1</span>' in html


def test_filters_by_status_queue_and_kind(admin_client):
    failed = make_task(ERROR, queue="mail")
    waiting = make_task(WAITING, queue="mail", kind="cron")
    done = make_task(DONE)
    cases = {
        f"status__exact={ERROR}": {failed},
        "queue=mail": {failed, waiting},
        "kind__exact=cron": {waiting},
        f"status__exact={DONE}&queue=default": {done},
    }
    for query, expected in cases.items():
        response = admin_client.get(f"{LIST}?{query}")
        assert response.status_code == 200, query
        assert set(response.context["cl"].result_list) == expected, query


def test_search_by_function_name_and_id(admin_client):
    add = make_task(function="tests.app.tasks.add")
    boom = make_task(function="tests.app.tasks.boom")
    for term, expected in [
        ("boom", {boom}),
        ("tasks.add", {add}),
        (str(add.pk), {add}),
        (f"#{boom.pk}", {boom}),
    ]:
        response = admin_client.get(LIST, {"q": term})
        assert set(response.context["cl"].result_list) == expected, term


def test_search_by_id_keeps_the_active_filters(admin_client):
    failed = make_task(ERROR)
    response = admin_client.get(LIST, {"q": str(failed.pk), "status__exact": DONE})
    assert list(response.context["cl"].result_list) == []


# -- the task's page ---------------------------------------------------------


def test_page_shows_arguments_result_error_and_traceback_readably(admin_client):
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    task = make_task(
        ERROR,
        args=((Decimal("1.10"), (1, 2)), {"when": when, "note": "<b>x</b>"}),
        result=serialization.encode_value({"ok": [1, 2]}),
        error_message="boom <script>",
        traceback='Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom <script>',
        history=[{"attempt": 1, "worker_id": "h:1:a", "error": "boom <script>"}],
    )
    response = admin_client.get(change_url(task))
    assert response.status_code == 200
    html = response.content.decode()
    arguments = re.search(r'<pre class="autotask-json">(.*?)</pre>', html, re.S).group(1)
    assert '"kwargs": {\n    "when": {\n      "__at__": "datetime"' in arguments.replace("&quot;", '"')
    assert "&lt;b&gt;x&lt;/b&gt;" in arguments  # escaped, never markup
    assert '"__at__": "decimal"' in arguments.replace("&quot;", '"')
    assert "<script>" not in html.split("</header>", 1)[-1].replace('<script src="', "")
    assert '<pre class="autotask-traceback">Traceback (most recent call last):\n' in html
    assert "ValueError: boom &lt;script&gt;" in html
    assert "&quot;ok&quot;: [\n    1,\n    2\n  ]" in html
    assert "<th>Attempt</th>" in html


def test_page_is_read_only_for_a_superuser(admin_client):
    task = make_task(WAITING)
    response = admin_client.get(change_url(task))
    html = response.content.decode()
    assert 'name="_save"' not in html and "<textarea" not in html
    assert admin_client.post(change_url(task), {"function": "evil"}).status_code == 403
    assert admin_client.get(reverse("admin:autotask_taskqueue_add")).status_code == 403
    assert TaskQueue.objects.get(pk=task.pk).function == "tests.app.tasks.add"


@pytest.mark.parametrize(
    "args, result",
    [
        ("{not json", None),
        ('{"args": 5}', None),
        ("pickle:bm90IGEgcGlja2xl", None),
        (serialization.encode_call((), {}), "{broken"),
        (serialization.encode_call((), {}), '{"__at__": "no-such-tag", "v": 1}'),
    ],
)
def test_corrupt_payloads_show_a_note_not_an_error(admin_client, args, result):
    task = make_task(DONE if result else WAITING, args=args, result=result)
    response = admin_client.get(change_url(task))
    assert response.status_code == 200
    html = response.content.decode()
    what = "result" if result else "arguments"
    assert f'<p class="errornote">The stored {what} cannot be decoded: ' in html


def test_pickled_value_outside_json_is_shown_by_repr(admin_client, settings):
    settings.AUTOTASK_SERIALIZER = "pickle"
    task = make_task(DONE, result=serialization.encode_value(complex(1, 2), serializer="pickle"))
    html = admin_client.get(change_url(task)).content.decode()
    assert "&quot;repr&quot;: &quot;(1+2j)&quot;" in html


# -- actions -----------------------------------------------------------------


def test_retry_failed_tasks(admin_client):
    failed = make_task(
        ERROR, function="tests.app.tasks.flaky", attempts=3, max_attempts=3, error_message="bad"
    )
    gone = make_task(ERROR, function="tests.app.gone.func", attempts=1, max_attempts=1)
    done = make_task(DONE)
    before = timezone.now()
    response = act(admin_client, "retry_failed", [failed, gone, done])
    assert messages_of(response) == [
        "Retried 2 tasks.",
        "1 task was left alone: only failed (Error) tasks are retried.",
    ]
    failed.refresh_from_db()
    assert failed.status == WAITING and failed.scheduled_at >= before
    assert (failed.finished_at, failed.expires_at, failed.worker_id) == (None, None, "")
    # A fresh budget: flaky allows 2 retries, so 3 more attempts after the 3 made.
    assert (failed.attempts, failed.max_attempts) == (3, 6)
    assert failed.error_message == "bad"  # the last failure stays readable until the next run
    gone.refresh_from_db()
    assert (gone.status, gone.max_attempts) == (WAITING, 2)  # not importable: one more attempt
    assert TaskQueue.objects.get(pk=done.pk).status == DONE


def test_cancel_waiting_tasks(admin_client):
    waiting = make_task(WAITING)
    running = make_task(RUNNING)
    response = act(admin_client, "cancel_waiting", [waiting, running])
    assert messages_of(response) == [
        "Cancelled 1 task.",
        "1 task was left alone: only waiting tasks can be cancelled.",
    ]
    assert TaskQueue.objects.get(pk=waiting.pk).status == CANCELLED
    assert TaskQueue.objects.get(pk=running.pk).status == RUNNING


def test_the_admin_and_the_handle_cancel_by_one_policy(admin_client):
    by_admin, by_handle = make_task(WAITING), make_task(WAITING)
    act(admin_client, "cancel_waiting", [by_admin])
    assert DelayedTask(by_handle.pk).cancel() is True
    for row in TaskQueue.objects.filter(pk__in=[by_admin.pk, by_handle.pk]):
        assert row.status == CANCELLED
        assert row.finished_at is not None
        assert row.expires_at == row.finished_at + CANCELLED_KEPT == row.finished_at + timedelta(days=1)


def test_delete_finished_tasks(admin_client):
    finished = [make_task(DONE), make_task(ERROR), make_task(CANCELLED)]
    waiting, running = make_task(WAITING), make_task(RUNNING)
    response = act(admin_client, "delete_finished", [*finished, waiting, running])
    assert messages_of(response) == [
        "Deleted 3 tasks.",
        "2 tasks were left alone: only finished (Done, Error, Cancelled) tasks are deleted.",
    ]
    assert set(TaskQueue.objects.values_list("pk", flat=True)) == {waiting.pk, running.pk}


def test_the_default_delete_action_is_replaced(admin_client):
    make_task(DONE)
    choices = dict(admin_client.get(LIST).context["action_form"].fields["action"].choices)
    assert "delete_selected" not in choices
    assert set(choices) == {
        "",
        "retry_failed",
        "cancel_waiting",
        "stop_running",
        "run_schedule_now",
        "delete_finished",
    }


def test_action_with_nothing_applicable_warns(admin_client):
    response = act(admin_client, "retry_failed", [make_task(DONE)])
    assert messages_of(response) == ["1 task was left alone: only failed (Error) tasks are retried."]
    assert TaskQueue.objects.get().status == DONE


def make_schedule(name="tests.app.tasks.echo", **fields):
    values = {"kind": "periodic", "spec": "60", "next_run_at": timezone.now() + timedelta(minutes=1)}
    values.update(fields)
    return Schedule.objects.create(name=name, **values)


@pytest.mark.parametrize("count", [12, 60])
def test_the_summary_counts_every_schedule_it_does_not_list(admin_client, count):
    for i in range(count):
        make_schedule(name=f"tests.app.tasks.s{i:02}")
    html = admin_client.get(LIST).content.decode()
    assert f"and {count - 10} more</a>" in html


def test_run_a_periodic_task_now_from_the_task_list(admin_client):
    schedule = make_schedule()
    run = make_task(DONE, function=schedule.name, kind="periodic", schedule=schedule, args="")
    plain = make_task(DONE)
    response = act(admin_client, "run_schedule_now", [run, plain])
    assert messages_of(response) == ["Enqueued a run now: tests.app.tasks.echo."]
    new = TaskQueue.objects.filter(schedule=schedule, status=WAITING).get()
    assert (new.function, new.kind) == ("tests.app.tasks.echo", "periodic")
    ran = tasks.echo.func  # the enqueued run takes no arguments
    assert serialization.decode_call(new.args) == ((), {}) and ran() == [[], {}]


def test_run_now_refuses_non_periodic_and_missing_schedules(admin_client):
    response = act(admin_client, "run_schedule_now", [make_task(DONE)])
    assert messages_of(response) == ["None of the selected tasks is a periodic or cron task."]
    gone = make_schedule("tests.app.gone.job", missing=True)
    response = admin_client.post(SCHEDULES, {"action": "run_now", "_selected_action": [gone.pk]}, follow=True)
    assert messages_of(response) == ["Not run, the function is gone from the code: tests.app.gone.job."]
    assert not TaskQueue.objects.exclude(schedule=None).exists()


def test_run_now_refuses_a_schedule_that_is_not_a_declared_task(admin_client):
    forged = make_schedule("os.system")
    declared = make_schedule()
    response = admin_client.post(
        SCHEDULES, {"action": "run_now", "_selected_action": [forged.pk, declared.pk]}, follow=True
    )
    assert messages_of(response) == [
        "Not run, not a declared task (a worker refuses it): os.system. Declare the function with "
        "@delayed_task, @periodic_task, @cron_task or Django's @task.",
        "Enqueued a run now: tests.app.tasks.echo.",
    ]
    assert list(TaskQueue.objects.values_list("function", flat=True)) == ["tests.app.tasks.echo"]


def test_schedule_list_and_run_now(admin_client):
    schedule = make_schedule(last_status=ERROR, last_error="it broke " * 20, kind="cron", spec="*/5 * * * *")
    response = admin_client.get(SCHEDULES)
    html = response.content.decode()
    assert "tests.app.tasks.echo" in html and "*/5 * * * *" in html and "it broke it broke" in html
    assert "…" in html  # the long error is shortened in the list
    response = admin_client.post(
        SCHEDULES, {"action": "run_now", "_selected_action": [schedule.pk]}, follow=True
    )
    assert messages_of(response) == ["Enqueued a run now: tests.app.tasks.echo."]
    assert TaskQueue.objects.filter(schedule=schedule, kind="cron").count() == 1
    page = admin_client.get(change_url(schedule))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_worker_list_is_read_only(admin_client):
    now = timezone.now()
    fresh = Worker.objects.create(worker_id="web1:10:aa", hostname="web1", pid=10, last_seen=now)
    Worker.objects.create(worker_id="web2:11:bb", hostname="web2", pid=11, last_seen=now - timedelta(hours=1))
    html = admin_client.get(WORKERS).content.decode()
    assert "web1:10:aa" in html and html.count('alt="True"') == 1 and html.count('alt="False"') == 1
    assert admin_client.get(WORKERS).context["action_form"] is None  # no actions at all
    assert admin_client.post(change_url(fresh), {"pid": 1}).status_code == 403
    assert admin_client.get(reverse("admin:autotask_worker_delete", args=[fresh.pk])).status_code == 403


# -- the summary -------------------------------------------------------------


def test_summary_counts_oldest_waiting_workers_and_next_runs(admin_client, settings):
    settings.AUTOTASK_LEASE_SECONDS = 30  # alive: a heartbeat within 60 s
    now = timezone.now()
    for status, count in ((WAITING, 3), (DONE, 2), (ERROR, 1)):
        for _ in range(count):
            make_task(status)
    oldest = make_task(WAITING, scheduled_at=now - timedelta(hours=2), function="tests.app.tasks.echo")
    make_task(WAITING, scheduled_at=now + timedelta(days=3))  # not due: not "waiting long"
    Worker.objects.create(worker_id="w1:1:a", hostname="w1", pid=1, queues="mail", last_seen=now)
    Worker.objects.create(worker_id="w2:2:b", hostname="w2", pid=2, last_seen=now - timedelta(seconds=90))
    make_schedule("app.jobs.nightly", kind="cron", spec="0 3 * * *", next_run_at=now + timedelta(hours=5))

    response = admin_client.get(LIST)
    summary = response.context["autotask_summary"]
    assert {s["name"]: s["count"] for s in summary["statuses"]} == {
        "Waiting": 5,
        "Running": 0,
        "Done": 2,
        "Error": 1,
        "Cancelled": 0,
        "Waiting for a slot": 0,
    }
    assert summary["oldest_waiting"]["id"] == oldest.pk and summary["oldest_waiting"]["age_text"] == "2 h"
    assert summary["failures_last_hour"] == 1
    assert summary["workers_alive_count"] == 1 and summary["workers_total"] == 2
    assert [s["name"] for s in summary["schedules"]] == ["app.jobs.nightly"]
    html = response.content.decode()
    assert (
        f'<a href="{LIST}?status__exact={ERROR}"><span class="autotask-status autotask-error">Error</span> '
        in html
    )
    assert f"#{oldest.pk} tests.app.tasks.echo" in html
    assert "w1:1 (mail)" in html and "w2:2" not in html
    assert "app.jobs.nightly" in html and "(cron 0 3 * * *)" in html


def test_summary_with_nothing_there(admin_client):
    html = admin_client.get(LIST).content.decode()
    assert "no task is due" in html and "none registered" in html
    assert '<span class="autotask-number autotask-bad">0</span>' in html  # no worker alive


# -- permissions -------------------------------------------------------------


def test_staff_without_permissions_sees_nothing(client):
    client.force_login(user_with())
    for url in (LIST, SCHEDULES, WORKERS, change_url(make_task())):
        assert client.get(url).status_code == 403, url
    assert "autotask" not in client.get(reverse("admin:index")).content.decode().lower()


def test_non_staff_is_sent_to_log_in(client):
    client.force_login(user_with("view_taskqueue", "change_taskqueue", staff=False))
    response = client.get(LIST)
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


def test_view_permission_alone_is_read_only_without_actions(client):
    client.force_login(user_with("view_taskqueue", "view_schedule", "view_worker"))
    failed = make_task(ERROR)
    response = client.get(LIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None and 'name="action"' not in response.content.decode()
    assert client.get(change_url(failed)).status_code == 200
    assert client.get(SCHEDULES).context["action_form"] is None
    # Posting an action anyway changes nothing.
    act(client, "retry_failed", [failed])
    assert TaskQueue.objects.get(pk=failed.pk).status == ERROR
    assert client.post(change_url(failed), {}).status_code == 403
    delete = reverse("admin:autotask_taskqueue_delete", args=[failed.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert TaskQueue.objects.filter(pk=failed.pk).exists()


def test_change_permission_gives_the_change_actions_only(client):
    client.force_login(user_with("change_taskqueue"))
    choices = dict(client.get(LIST).context["action_form"].fields["action"].choices)
    assert set(choices) == {"", "retry_failed", "cancel_waiting", "stop_running", "run_schedule_now"}
    failed = make_task(ERROR)
    act(client, "retry_failed", [failed])
    assert TaskQueue.objects.get(pk=failed.pk).status == WAITING


def test_delete_permission_deletes_finished_tasks_only(client):
    client.force_login(user_with("view_taskqueue", "delete_taskqueue"))
    choices = dict(client.get(LIST).context["action_form"].fields["action"].choices)
    assert set(choices) == {"", "delete_finished"}
    waiting, done = make_task(WAITING), make_task(DONE)
    assert client.get(reverse("admin:autotask_taskqueue_delete", args=[waiting.pk])).status_code == 403
    response = client.post(reverse("admin:autotask_taskqueue_delete", args=[done.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert list(TaskQueue.objects.values_list("pk", flat=True)) == [waiting.pk]


# -- 10,000 tasks --------------------------------------------------------------


@pytest.fixture
def many_tasks(db):
    """10,000 tasks in every status: 1,250 inserted, then doubled three times by the database."""
    now = timezone.now()
    schedule = make_schedule()
    encoded = serialization.encode_call((1, 2), {})
    seed = [
        NewTask(
            function=f"tests.app.tasks.{('add', 'echo', 'boom')[i % 3]}",
            queue=("default", "mail", "reports")[i % 3],
            args=encoded,
            created_at=now - timedelta(seconds=i),
            scheduled_at=now - timedelta(seconds=i),
        )
        for i in range(1250)
    ]
    get_ops().insert_tasks(seed, notify=False)
    columns = ", ".join(connection.ops.quote_name(c) for c in INSERT_COLUMNS)
    table = connection.ops.quote_name(TaskQueue._meta.db_table)
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}")
    rows = TaskQueue.objects.annotate(m=Mod("id", 10))
    history = [{"attempt": 1, "worker_id": "w:1:a", "error": "boom"}]
    rows.filter(m__in=(1, 6)).update(status=RUNNING, attempts=1, worker_id="w:1:a")
    rows.filter(m__in=(2, 7)).update(status=DONE, attempts=1, result=serialization.encode_value(7))
    rows.filter(m__in=(3, 8)).update(
        status=ERROR,
        attempts=1,
        error_message="boom",
        traceback="Traceback ...\nValueError: boom",
        history=history,
    )
    rows.filter(m__in=(4, 9)).update(status=CANCELLED)
    rows.filter(m=0).update(kind="periodic", schedule=schedule)
    for n in range(3):
        Worker.objects.create(worker_id=f"w{n}:{n}:x", hostname=f"w{n}", pid=n)
    return schedule


def test_every_admin_page_renders_with_10000_tasks(admin_client, many_tasks, django_assert_max_num_queries):
    assert TaskQueue.objects.count() == 10_000
    first = TaskQueue.objects.order_by("id")
    pages = {
        "list": LIST,
        "list page 50": f"{LIST}?p=50",
        "status filter": f"{LIST}?status__exact={ERROR}",
        "queue and kind filters": f"{LIST}?queue=mail&kind__exact=periodic",
        "search": f"{LIST}?q=echo",
        "search id": f"{LIST}?q={first.first().pk}",
        "sorted by age": f"{LIST}?o=8",
        "done task": change_url(first.filter(status=DONE).first()),
        "failed task": change_url(first.filter(status=ERROR).first()),
        "scheduled run": change_url(first.exclude(schedule=None).first()),
        "schedules": SCHEDULES,
        "schedule": change_url(many_tasks),
        "workers": WORKERS,
        "worker": change_url(Worker.objects.first()),
        "index": reverse("admin:index"),
        "app index": reverse("admin:app_list", args=["autotask"]),
    }
    for name, url in pages.items():
        with django_assert_max_num_queries(MAX_QUERIES):
            response = admin_client.get(url)
        assert response.status_code == 200, name
        if "cl" in (response.context or {}):
            assert 0 < len(response.context["cl"].result_list) <= PAGE_SIZE, name
    # An action over a whole page runs a fixed number of statements, not one per task.
    page = list(TaskQueue.objects.filter(status=ERROR).values_list("pk", flat=True)[:PAGE_SIZE])
    with django_assert_max_num_queries(ACTION_QUERIES):
        admin_client.post(LIST, {"action": "retry_failed", "_selected_action": page})
    assert TaskQueue.objects.filter(pk__in=page, status=WAITING).count() == PAGE_SIZE
    assert LogEntry.objects.filter(object_id__in=[str(pk) for pk in page]).count() == PAGE_SIZE


def test_stored_markup_is_escaped_and_undeclared_rows_are_not_retried(admin_client):
    forged = make_task(ERROR, function="<script>alert(1)</script>.x", error_message="<b>e</b>")
    declared = make_task(ERROR, function="tests.app.tasks.boom")
    for url in (LIST, change_url(forged)):
        page = admin_client.get(url).content.decode()
        assert "<script>alert(1)" not in page and "<b>e</b>" not in page
        assert "&lt;script&gt;alert(1)" in page
    evil = make_task(ERROR, function="os.system", args=(("touch /tmp/x",), {}))
    response = act(admin_client, "retry_failed", [forged, declared, evil])
    shown = messages_of(response)
    assert any("Not retried, not a declared task" in m and "os.system" in m for m in shown), shown
    assert "<script>alert(1)" not in response.content.decode()
    evil.refresh_from_db()
    declared.refresh_from_db()
    assert (evil.status, declared.status) == (ERROR, WAITING)


def test_overdue_next_runs_are_flagged(admin_client):
    make_schedule(name="tests.app.tasks.late", next_run_at=timezone.now() - timedelta(minutes=3))
    make_schedule(name="tests.app.tasks.now", next_run_at=timezone.now() - timedelta(seconds=2))
    make_schedule(name="tests.app.tasks.soon")
    for url in (LIST, SCHEDULES):
        html = admin_client.get(url).content.decode()
        assert html.count("overdue by") == 1, url
        assert "overdue by 3 min" in html, url
