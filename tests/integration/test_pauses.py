"""Pausing from code, the commands, autotask_status and the admin; the scheduler and paused schedules."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

import autotask
from autotask.db import get_ops
from autotask.exceptions import ScheduleNotFound
from autotask.maintenance import pauses, scheduling
from autotask.models import PausedQueue, Schedule, TaskQueue
from autotask.task import WAITING
from tests.app import tasks

pytestmark = pytest.mark.django_db

EVERY_SECOND = "tests.app.scheduled.every_second"


@pytest.fixture
def declared(declared_schedules):
    """The one-second schedules of tests.app.scheduled, declared in this process for one test."""
    return declared_schedules


def runs(name):
    return list(
        TaskQueue.objects.filter(function=name)
        .order_by("scheduled_at")
        .values_list("scheduled_at", flat=True)
    )


def command(name, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# -- schedules, in process: the scheduler at chosen instants ---------------------


def test_a_paused_schedule_does_not_fire_and_resumes_without_a_burst(declared):
    start = timezone.now()
    scheduling.tick(now=start)  # start_now: the first occurrence runs at once
    assert len(runs(EVERY_SECOND)) == 1
    assert autotask.pause_schedule(declared.every_second, by="test") is True
    for seconds in (1.5, 2.5, 5, 10):
        scheduling.tick(now=start + timedelta(seconds=seconds))
    assert len(runs(EVERY_SECOND)) == 1, "a paused schedule fired"
    row = Schedule.objects.get(name=EVERY_SECOND)
    assert (row.paused, row.paused_by) == (True, "test")
    assert row.next_run_at < start + timedelta(seconds=2), "a paused schedule does not advance"

    assert autotask.resume_schedule(EVERY_SECOND, now=start + timedelta(seconds=10.2)) is True
    row = Schedule.objects.get(name=EVERY_SECOND)
    # The next occurrence after the resume, in the schedule's phase: none of the eight missed.
    assert row.next_run_at == start + timedelta(seconds=11)
    assert (row.paused, row.paused_at, row.paused_by) == (False, None, "")
    scheduling.tick(now=start + timedelta(seconds=10.5))
    assert len(runs(EVERY_SECOND)) == 1
    scheduling.tick(now=start + timedelta(seconds=11.1))
    assert runs(EVERY_SECOND) == [start, start + timedelta(seconds=11)]


def test_a_pause_committed_after_the_scheduler_read_the_row_holds(declared):
    start = timezone.now()
    scheduling.tick(now=start)
    row = Schedule.objects.get(name=EVERY_SECOND)  # read by a scheduler that is about to fire
    pauses.pause_schedule(EVERY_SECOND)
    spec = declared.every_second.spec
    scheduling._fire(row, spec, start + timedelta(seconds=1.5), "default")
    assert len(runs(EVERY_SECOND)) == 1, "the compare-and-set fired a paused schedule"


def test_a_paused_schedule_does_not_set_the_next_wake_up(declared):
    start = timezone.now()
    scheduling.tick(now=start)
    for name in scheduling._schedules:
        if name.startswith("tests.app.scheduled"):
            pauses.pause_schedule(name)
    Schedule.objects.exclude(name__startswith="tests.app.scheduled").delete()
    # Paused and overdue: the scheduler must not spin on it.
    assert scheduling.tick(now=start + timedelta(seconds=30)) == scheduling.MAX_TICK_WAIT


def test_resume_of_a_cron_schedule_stored_by_another_process(db):
    now = timezone.now().replace(microsecond=0)
    Schedule.objects.create(
        name="elsewhere.job",
        kind="cron",
        spec="*/5 * * * *",
        next_run_at=now - timedelta(hours=3),
        paused=True,
    )
    assert pauses.resume_schedule("elsewhere.job", now=now) is True
    next_run = Schedule.objects.get(name="elsewhere.job").next_run_at
    assert now < next_run <= now + timedelta(minutes=5) and next_run.minute % 5 == 0


def test_pausing_twice_resuming_what_runs(declared):
    assert pauses.pause_schedule(EVERY_SECOND) is True
    assert pauses.pause_schedule(EVERY_SECOND) is False
    assert pauses.resume_schedule(EVERY_SECOND) is True
    assert pauses.resume_schedule(EVERY_SECOND) is False


@pytest.mark.parametrize("unknown", ["tests.app.scheduled.no_such", "tests.app.tasks.add"])
def test_pausing_a_schedule_that_does_not_exist_is_an_error(db, unknown):
    with pytest.raises(ScheduleNotFound, match=unknown):
        pauses.pause_schedule(unknown)
    with pytest.raises(LookupError):
        pauses.resume_schedule(unknown)


def test_a_schedule_is_named_by_its_name_or_its_task(declared):
    assert pauses.schedule_name(declared.every_second) == EVERY_SECOND
    with pytest.raises(TypeError, match="schedule"):
        pauses.pause_schedule(3)


# -- queues: status and commands --------------------------------------------------


def test_status_shows_what_is_paused(declared):
    tasks.add.using(queue="held")(1, 2)
    pauses.pause_queue("held", by="ops")
    pauses.pause_schedule(EVERY_SECOND)
    out, _ = command("autotask_status", "--json", "--no-worker-check")
    data = json.loads(out)
    assert [(q["name"], q["paused_by"]) for q in data["paused"]["queues"]] == [("held", "ops")]
    assert [s["name"] for s in data["paused"]["schedules"]] == [EVERY_SECOND]
    shown = {s["name"]: s for s in data["schedules"]}
    assert shown[EVERY_SECOND]["paused"] is True and shown[EVERY_SECOND]["overdue"] is False
    # A paused queue's tasks wait on purpose: they do not make the queue look stuck.
    assert data["oldest_waiting"] is None
    text, _ = command("autotask_status", "--no-worker-check")
    assert "Paused: 2" in text and "queue held" in text and f"schedule {EVERY_SECOND}" in text
    assert f"PAUSED  {EVERY_SECOND}" in text


def test_status_without_pauses(db):
    out, _ = command("autotask_status", "--json", "--no-worker-check")
    assert json.loads(out)["paused"] == {"queues": [], "schedules": []}
    text, _ = command("autotask_status", "--no-worker-check")
    assert "Paused" not in text


def test_pause_and_resume_queues_from_the_command_line(db):
    tasks.add.using(queue="mail")(1, 2)
    out, err = command("autotask_pause", "queue", "mail", "mial")
    assert "paused queue mail" in out and "paused queue mial" in out
    # Pausing ahead of time is allowed; a name nothing uses is called out (a typo?).
    assert "'mial'" in err and "'mail'" not in err
    assert set(PausedQueue.objects.values_list("name", flat=True)) == {"mail", "mial"}
    assert PausedQueue.objects.get(name="mail").paused_by.startswith("command")
    out, _ = command("autotask_pause", "queue", "mail")
    assert "queue mail was already paused" in out
    out, _ = command("autotask_resume", "queue", "mail", "mial", "never")
    assert "resumed queue mail" in out and "queue never was not paused" in out
    assert not PausedQueue.objects.exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [("a,b", "separated by spaces"), (" a", "separated by spaces"), ("", "non-empty"), ("x" * 101, "100")],
)
def test_a_bad_queue_name_changes_nothing(db, bad, message):
    with pytest.raises(CommandError, match=message):
        command("autotask_pause", "queue", "good", bad)
    assert not PausedQueue.objects.exists()


def test_pause_and_resume_schedules_from_the_command_line(declared):
    scheduling.sync()
    out, _ = command("autotask_pause", "schedule", EVERY_SECOND)
    assert f"paused schedule {EVERY_SECOND}" in out
    assert Schedule.objects.get(name=EVERY_SECOND).paused
    with pytest.raises(CommandError, match="no periodic or cron schedule named 'nope'"):
        command("autotask_resume", "schedule", EVERY_SECOND, "nope")
    assert Schedule.objects.get(name=EVERY_SECOND).paused, "nothing changes when a name is unknown"
    out, _ = command("autotask_resume", "schedule", EVERY_SECOND)
    assert f"resumed schedule {EVERY_SECOND}" in out
    assert Schedule.objects.get(name=EVERY_SECOND).next_run_at > timezone.now() - timedelta(seconds=1)


def test_the_commands_refuse_what_they_do_not_know(db):
    with pytest.raises(CommandError):
        command("autotask_pause", "worker", "x")
    with pytest.raises(CommandError):
        command("autotask_resume", "queue")


def test_resume_wakes_the_queues_workers_on_commit(db, monkeypatch):
    woken = []
    ops = get_ops()
    monkeypatch.setattr(type(ops), "notify", lambda self, cursor, queues: woken.append(sorted(queues)))
    pauses.pause_queue("q")
    assert woken == []
    pauses.resume_queue("q")
    assert woken == [["q"]]


# -- the admin ------------------------------------------------------------------

PAUSED = reverse("admin:autotask_pausedqueue_changelist")
SCHEDULES = reverse("admin:autotask_schedule_changelist")


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_admin_pauses_a_queue_by_adding_it_and_resumes_it(admin_client):
    tasks.add.using(queue="mail")(1, 2)
    response = admin_client.post(reverse("admin:autotask_pausedqueue_add"), {"name": "mail"}, follow=True)
    assert response.status_code == 200
    paused = PausedQueue.objects.get(name="mail")
    assert paused.paused_by == "admin (admin)"
    html = admin_client.get(PAUSED).content.decode()
    assert "mail" in html
    page = admin_client.get(reverse("admin:autotask_pausedqueue_change", args=[paused.pk])).content.decode()
    assert "Waiting tasks" in page
    selected = {"action": "delete_selected", "_selected_action": [paused.pk], "post": "yes"}
    admin_client.post(PAUSED, selected, follow=True)
    assert not PausedQueue.objects.exists()
    assert TaskQueue.objects.get().status == WAITING


def test_the_admin_refuses_a_bad_name_and_warns_of_an_unknown_one(admin_client):
    response = admin_client.post(reverse("admin:autotask_pausedqueue_add"), {"name": "x" * 101})
    assert "at most 100 characters" in response.content.decode()
    assert not PausedQueue.objects.exists()
    response = admin_client.post(reverse("admin:autotask_pausedqueue_add"), {"name": "typo"}, follow=True)
    assert any("paused ahead of time" in m for m in messages_of(response))
    assert PausedQueue.objects.filter(name="typo").exists()


def test_the_admin_deletes_a_pause_by_resuming(admin_client):
    paused = PausedQueue.objects.create(name="q")
    admin_client.post(reverse("admin:autotask_pausedqueue_delete", args=[paused.pk]), {"post": "yes"})
    assert not PausedQueue.objects.exists()


def test_the_admin_pauses_and_resumes_schedules(admin_client, declared):
    scheduling.sync()
    row = Schedule.objects.get(name=EVERY_SECOND)
    response = admin_client.post(SCHEDULES, {"action": "pause", "_selected_action": [row.pk]}, follow=True)
    assert messages_of(response) == [f"Paused: {EVERY_SECOND}."]
    assert Schedule.objects.get(pk=row.pk).paused_by == "admin (admin)"
    assert (
        "Paused"
        in admin_client.get(reverse("admin:autotask_schedule_change", args=[row.pk])).content.decode()
    )
    response = admin_client.post(SCHEDULES, {"action": "pause", "_selected_action": [row.pk]}, follow=True)
    assert messages_of(response) == ["1 left alone: already paused."]
    response = admin_client.post(SCHEDULES, {"action": "resume", "_selected_action": [row.pk]}, follow=True)
    assert messages_of(response) == [f"Resumed: {EVERY_SECOND}."]
    assert not Schedule.objects.get(pk=row.pk).paused


def test_run_due_leaves_a_paused_queue_alone(db):
    from autotask.testing import run_due

    held = tasks.add.using(queue="held")(1, 2)
    free = tasks.add.using(queue="free")(2, 3)
    pauses.pause_queue("held")
    queues = ["held", "free"]  # not the schedules' runs other tests declared
    assert [r.pk for r in run_due(queues)] == [free.pk]
    pauses.resume_queue("held")
    assert [r.pk for r in run_due(queues)] == [held.pk]
