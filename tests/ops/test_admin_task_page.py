"""A task's page in the admin: the Retry / Cancel / Run again buttons, and the history every change writes."""

import datetime
import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse

from autotask import serialization
from autotask.models import Schedule, TaskQueue, Worker
from autotask.task import CANCELLED, DONE, ERROR, RUNNING, WAITING
from tests.conftest import wait_for
from tests.ops.test_admin import (
    SCHEDULES,
    WORKERS,
    act,
    change_url,
    make_schedule,
    make_task,
    messages_of,
    user_with,
)

pytestmark = pytest.mark.django_db

BUTTONS = {"retry": "Retry", "cancel": "Cancel", "stop": "Stop", "run-again": "Run again"}


def button_url(task, slug):
    return reverse(f"admin:autotask_taskqueue_{slug.replace('-', '_')}", args=[task.pk])


def shown_buttons(client, task):
    html = client.get(change_url(task)).content.decode()
    return [slug for slug in BUTTONS if f'action="{button_url(task, slug)}"' in html]


def history(obj):
    """The admin history of ``obj``: (flag, message) pairs, oldest first."""
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    ).order_by("id")
    return [(e.action_flag, e.change_message) for e in entries]


# -- which buttons a page shows ------------------------------------------------


@pytest.mark.parametrize(
    "status, expected",
    [
        (WAITING, ["cancel"]),
        (RUNNING, ["stop"]),
        (DONE, ["run-again"]),
        (ERROR, ["retry", "run-again"]),
        (CANCELLED, ["run-again"]),
    ],
)
def test_each_button_is_shown_only_where_it_applies(admin_client, status, expected):
    assert shown_buttons(admin_client, make_task(status)) == expected


def test_the_buttons_are_posted_forms_with_a_csrf_token(admin_client):
    task = make_task(ERROR)
    html = admin_client.get(change_url(task)).content.decode()
    form = html[html.index(f'<form method="post" action="{button_url(task, "retry")}">') :]
    form = form[: form.index("</form>")]
    assert 'name="csrfmiddlewaretoken"' in form
    assert '<button type="submit" class="button autotask-button-retry"' in form and ">Retry</button>" in form


def test_a_user_with_the_view_permission_only_sees_no_button_and_cannot_press_one(client):
    client.force_login(user_with("view_taskqueue"))
    failed, waiting = make_task(ERROR), make_task(WAITING)
    assert shown_buttons(client, failed) == [] and shown_buttons(client, waiting) == []
    assert client.post(button_url(failed, "retry")).status_code == 403
    assert client.post(button_url(waiting, "cancel")).status_code == 403
    assert client.post(button_url(failed, "run-again")).status_code == 403
    assert TaskQueue.objects.get(pk=failed.pk).status == ERROR
    assert TaskQueue.objects.get(pk=waiting.pk).status == WAITING
    assert TaskQueue.objects.count() == 2 and not LogEntry.objects.exists()


def test_a_user_who_is_not_staff_is_sent_to_log_in(client):
    client.force_login(user_with("view_taskqueue", "change_taskqueue", staff=False))
    failed = make_task(ERROR)
    response = client.post(button_url(failed, "retry"))
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    assert TaskQueue.objects.get(pk=failed.pk).status == ERROR


def test_the_change_permission_is_enough(client):
    client.force_login(user_with("change_taskqueue"))
    failed = make_task(ERROR, function="tests.app.tasks.flaky")
    assert shown_buttons(client, failed) == ["retry", "run-again"]
    assert client.post(button_url(failed, "retry")).status_code == 302
    assert TaskQueue.objects.get(pk=failed.pk).status == WAITING


def test_a_button_is_pressed_by_post_only_and_checks_csrf(admin_user):
    failed = make_task(ERROR)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get(button_url(failed, "retry")).status_code == 405
    assert client.post(button_url(failed, "retry")).status_code == 403  # no CSRF token
    assert TaskQueue.objects.get(pk=failed.pk).status == ERROR and not LogEntry.objects.exists()


def test_a_button_on_a_task_that_is_gone_says_so(admin_client):
    gone = make_task(WAITING)
    gone.delete()  # deleted (or pruned) while its page was open
    response = admin_client.post(button_url(gone, "cancel"))
    assert response.status_code == 302
    assert any("doesn\u2019t exist" in m for m in messages_of(admin_client.get(response.url)))


# -- what each button does -----------------------------------------------------


def test_retry_puts_a_failed_task_back_and_writes_the_history(admin_client):
    failed = make_task(
        ERROR, function="tests.app.tasks.flaky", attempts=3, max_attempts=3, error_message="bad"
    )
    response = admin_client.post(button_url(failed, "retry"), follow=True)
    assert response.redirect_chain == [(change_url(failed), 302)]
    assert messages_of(response) == [f"Retried task #{failed.pk}: it waits again, due now."]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.max_attempts) == (WAITING, 3, 6)
    assert history(failed) == [(CHANGE, "Retried: waiting again, due now.")]
    entry = LogEntry.objects.get()
    assert entry.user.username == "admin" and entry.get_change_message() == "Retried: waiting again, due now."


def test_retry_of_a_task_that_is_no_longer_failed_changes_nothing(admin_client):
    done = make_task(DONE)  # e.g. retried and run meanwhile by another operator
    response = admin_client.post(button_url(done, "retry"), follow=True)
    assert messages_of(response) == [
        f"Task #{done.pk} was not retried: only failed (Error) tasks are retried."
    ]
    assert TaskQueue.objects.get(pk=done.pk).status == DONE and history(done) == []


def test_retry_refuses_a_function_that_is_not_a_declared_task(admin_client):
    evil = make_task(ERROR, function="os.system", args=(("touch /tmp/x",), {}))
    response = admin_client.post(button_url(evil, "retry"), follow=True)
    assert messages_of(response)[0].startswith(
        "Not retried, not a declared task (a worker refuses it): os.system."
    )
    assert TaskQueue.objects.get(pk=evil.pk).status == ERROR and history(evil) == []


def test_cancel_cancels_a_waiting_task_and_writes_the_history(admin_client):
    waiting = make_task(WAITING)
    response = admin_client.post(button_url(waiting, "cancel"), follow=True)
    assert response.redirect_chain == [(change_url(waiting), 302)]
    assert messages_of(response) == [f"Cancelled task #{waiting.pk}."]
    assert TaskQueue.objects.get(pk=waiting.pk).status == CANCELLED
    assert history(waiting) == [(CHANGE, "Cancelled while waiting.")]
    assert shown_buttons(admin_client, waiting) == ["run-again"]


def test_cancel_leaves_a_task_a_worker_took_meanwhile_alone(admin_client):
    running = make_task(RUNNING)
    response = admin_client.post(button_url(running, "cancel"), follow=True)
    assert messages_of(response) == [
        f"Task #{running.pk} was not cancelled: only waiting tasks can be cancelled."
    ]
    assert TaskQueue.objects.get(pk=running.pk).status == RUNNING and history(running) == []


@pytest.mark.parametrize("status", [DONE, ERROR, CANCELLED])
def test_run_again_enqueues_a_new_task_with_the_same_call_and_options(admin_client, status):
    schedule = make_schedule()
    options = {"timeout": 5.0, "retry_delay": 2.0, "failed_ttl": None}
    original = make_task(
        status,
        function="tests.app.tasks.flaky",
        args=(("/tmp/m", 2), {"note": datetime.date(2026, 1, 2)}),
        queue="mail",
        priority=7,
        ttl=600,
        kind="periodic",
        schedule=schedule,
        options={**options, "trace": {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}},
        attempts=3,
        max_attempts=3,
        error_message="bad" if status == ERROR else "",
    )
    response = admin_client.post(button_url(original, "run-again"), follow=True)
    new = TaskQueue.objects.exclude(pk=original.pk).get()
    assert response.redirect_chain == [(change_url(new), 302)]
    link = f'<a href="{change_url(new)}">#{new.pk}</a>'
    assert messages_of(response) == [f"Enqueued task {link}, a new run of task #{original.pk}."]
    assert link in response.content.decode()  # the message links to the new task
    assert serialization.decode_call(new.args) == (("/tmp/m", 2), {"note": datetime.date(2026, 1, 2)})
    assert (new.function, new.queue, new.priority, new.ttl, new.kind, new.schedule_id) == (
        "tests.app.tasks.flaky",
        "mail",
        7,
        600,
        "periodic",
        schedule.pk,
    )
    assert new.options == options  # the old run's trace context is not carried over
    # Due now, nothing of the original's run carried over; flaky allows 2 retries.
    assert (new.status, new.attempts, new.max_attempts, new.error_message) == (WAITING, 0, 3, "")
    assert new.scheduled_at <= new.created_at and new.started_at is None and new.history == []
    assert TaskQueue.objects.get(pk=original.pk).status == status  # the original stays as it was
    assert history(original) == [(CHANGE, f"Ran again as task #{new.pk}.")]
    assert history(new) == [(ADDITION, f"Added: a new run of task #{original.pk}.")]


def test_run_again_refuses_a_task_that_has_not_finished(admin_client):
    waiting = make_task(WAITING)
    response = admin_client.post(button_url(waiting, "run-again"), follow=True)
    assert messages_of(response) == [f"Task #{waiting.pk} was not run again: it has not finished."]
    assert TaskQueue.objects.count() == 1 and history(waiting) == []


def test_run_again_refuses_a_function_that_is_not_a_declared_task(admin_client):
    evil = make_task(DONE, function="os.system", args=(("touch /tmp/x",), {}))
    response = admin_client.post(button_url(evil, "run-again"), follow=True)
    assert messages_of(response)[0].startswith(
        "Not run again, not a declared task (a worker refuses it): os.system."
    )
    assert TaskQueue.objects.count() == 1 and not LogEntry.objects.exists()


# -- the page ------------------------------------------------------------------


def test_the_page_shows_times_to_the_second_and_the_duration(admin_client):
    started = datetime.datetime(2026, 5, 6, 7, 8, 9, 250_000, tzinfo=datetime.UTC)
    task = make_task(
        DONE,
        started_at=started,
        finished_at=started + timedelta(seconds=4.25),
        history=[
            {"attempt": 1, "worker_id": "h:1:a", "started_at": started.isoformat(), "finished_at": None}
        ],
    )
    html = admin_client.get(change_url(task)).content.decode()
    started_shown = (
        '<span class="autotask-nowrap">2026-05-06</span> <span class="autotask-nowrap">07:08:09</span>'
    )
    instant = "2026-05-06T07:08:09.250000+00:00"
    assert f'<time datetime="{instant}" title="{instant.replace("T", " ")}">{started_shown}</time>' in html
    assert '<span class="autotask-nowrap">07:08:13</span>' in html  # finished
    assert '<div class="readonly">4.2 s</div>' in html
    assert html.count(started_shown) == 2  # the page's field and the history's line


# -- every list action writes the history ------------------------------------


def test_list_actions_write_one_history_entry_per_task_they_changed(admin_client):
    failed, done = make_task(ERROR, function="tests.app.tasks.flaky"), make_task(DONE)
    waiting, running = make_task(WAITING), make_task(RUNNING)
    act(admin_client, "retry_failed", [failed, done])
    act(admin_client, "cancel_waiting", [waiting, running])
    assert history(failed) == [(CHANGE, "Retried: waiting again, due now.")]
    assert history(waiting) == [(CHANGE, "Cancelled while waiting.")]
    assert history(done) == [] and history(running) == []
    act(admin_client, "delete_finished", [done, running, waiting])
    assert history(done) == [(DELETION, "")] and history(running) == []
    assert history(waiting)[-1] == (DELETION, "")
    assert set(LogEntry.objects.filter(action_flag=DELETION).values_list("object_repr", flat=True)) == {
        f"tests.app.tasks.add #{done.pk} (done)",
        f"tests.app.tasks.add #{waiting.pk} (cancelled)",
    }


def test_run_now_writes_the_history_of_the_schedule_and_the_new_run(admin_client):
    schedule = make_schedule()
    run = make_task(DONE, function=schedule.name, kind="periodic", schedule=schedule, args="")
    act(admin_client, "run_schedule_now", [run])
    new = TaskQueue.objects.get(schedule=schedule, status=WAITING)
    assert history(schedule) == [(CHANGE, f"Run now: enqueued task #{new.pk}.")]
    assert history(new) == [(ADDITION, "Added: a run now of its periodic or cron task.")]
    admin_client.post(
        reverse("admin:autotask_schedule_changelist"),
        {"action": "run_now", "_selected_action": [schedule.pk]},
    )
    assert len(history(Schedule.objects.get())) == 2


def test_an_action_that_changes_nothing_writes_no_history(admin_client):
    act(admin_client, "retry_failed", [make_task(DONE)])
    act(admin_client, "cancel_waiting", [make_task(RUNNING)])
    act(admin_client, "delete_finished", [make_task(WAITING)])
    assert not LogEntry.objects.exists()


def test_schedules_and_workers_show_their_times_to_the_second(admin_client):
    at = datetime.datetime(2026, 7, 8, 9, 10, 11, tzinfo=datetime.UTC)
    schedule = make_schedule(next_run_at=at + timedelta(days=400), last_run_at=at)
    Worker.objects.create(worker_id="w:1:a", hostname="w", pid=1, started_at=at, last_seen=at)
    second = '<span class="autotask-nowrap">09:10:11</span></time>'
    for url in (SCHEDULES, change_url(schedule), WORKERS, change_url(Worker.objects.get())):
        html = admin_client.get(url).content.decode()
        assert second in html, url


# -- a worker takes the task while the operator presses -------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slug, before, taken", [("cancel", WAITING, RUNNING), ("retry", ERROR, WAITING)])
def test_a_task_changed_while_the_button_waits_is_left_alone_and_not_logged(
    admin_client, slug, before, taken
):
    """PostgreSQL: the button waits for the row's lock, then sees the committed change and leaves the task.

    Without the lock it would read the row before the change committed and write
    a history entry for a change it did not make.
    """
    if connection.vendor != "postgresql":
        pytest.skip("waits for a row lock seen in pg_stat_activity")
    task = make_task(before, function="tests.app.tasks.flaky")
    box = {}

    def press():
        try:
            box["response"] = admin_client.post(button_url(task, slug), follow=True)
        finally:
            connections.close_all()

    with transaction.atomic():  # the worker's side: it holds the row until it commits
        TaskQueue.objects.filter(pk=task.pk).update(status=taken)
        thread = threading.Thread(target=press, daemon=True)
        thread.start()
        wait_for(
            lambda: _waiting_for_a_lock('"autotask_taskqueue"'),
            timeout=15,
            message="the button to wait for the row",
        )
    thread.join(15)
    assert not thread.is_alive()
    assert messages_of(box["response"])[0].startswith(f"Task #{task.pk} was not ")
    assert TaskQueue.objects.get(pk=task.pk).status == taken and history(task) == []


def _waiting_for_a_lock(statement):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot otherwise
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            [f"%{statement}%"],
        )
        return cursor.fetchone()[0]
