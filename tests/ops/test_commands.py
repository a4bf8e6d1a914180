"""manage.py autotask_status and autotask_clean."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from autotask.models import Schedule, TaskQueue, Worker
from autotask.task import CANCELLED, DONE, ERROR, RUNNING, WAITING
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def status(*args):
    """Run autotask_status; return (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("autotask_status", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def task(
    status=WAITING, queue="default", age=timedelta(seconds=5), finished_ago=None, expires_in=None, **fields
):
    now = timezone.now()
    values = {"function": "tests.app.tasks.add", "status": status, "queue": queue}
    values.update(created_at=now - age, scheduled_at=now - age)
    if finished_ago is not None:
        values["finished_at"] = now - finished_ago
    if expires_in is not None:
        values["expires_at"] = now + expires_in
    values.update(fields)
    return TaskQueue.objects.create(**values)


def worker(name="w1", seen_ago=timedelta(0)):
    return Worker.objects.create(
        worker_id=f"{name}:1:abc",
        hostname=name,
        pid=1,
        queues="default,mail",
        last_seen=timezone.now() - seen_ago,
    )


@pytest.fixture
def busy_queue():
    oldest = task(WAITING, queue="mail", age=timedelta(minutes=10))
    task(WAITING, queue="mail", age=timedelta(minutes=1))
    task(WAITING, age=timedelta(days=-1))  # scheduled for tomorrow: not late
    task(RUNNING, queue="reports")
    task(DONE, finished_ago=timedelta(minutes=1))
    task(ERROR, finished_ago=timedelta(minutes=30))
    task(ERROR, finished_ago=timedelta(hours=3))  # outside the last hour
    Schedule.objects.create(
        name="app.jobs.nightly",
        kind="cron",
        spec="0 3 * * *",
        next_run_at=timezone.now() + timedelta(hours=2),
    )
    Schedule.objects.create(
        name="app.jobs.gone", kind="periodic", spec="60", next_run_at=timezone.now(), missing=True
    )
    return oldest


def test_status_json(busy_queue, settings):
    settings.AUTOTASK_LEASE_SECONDS = 30
    worker("alive", seen_ago=timedelta(seconds=10))
    worker("dead", seen_ago=timedelta(seconds=61))
    code, out, _ = status("--json")
    data = json.loads(out)
    assert code == 0 and data["healthy"] is True and data["problems"] == []
    assert data["queues"] == {
        "default": {"waiting": 1, "done": 1, "error": 2},
        "mail": {"waiting": 2},
        "reports": {"running": 1},
    }
    assert data["totals"] == {"waiting": 3, "running": 1, "done": 1, "error": 2, "cancelled": 0, "held": 0}
    assert data["oldest_waiting"]["id"] == busy_queue.pk
    assert 600 <= data["oldest_waiting_seconds"] < 700
    assert data["failures_last_hour"] == 1
    assert data["worker_timeout"] == 60.0
    assert data["workers_alive"] == 1
    assert [(w["hostname"], w["alive"]) for w in data["workers"]] == [("alive", True), ("dead", False)]
    assert [(s["name"], s["missing"]) for s in data["schedules"]] == [
        ("app.jobs.nightly", False),
        ("app.jobs.gone", True),
    ]


def test_status_text(busy_queue):
    worker("alive")
    code, out, err = status()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1].split() == ["queue", "waiting", "running", "done", "error", "cancelled", "held"]
    assert lines[2].split() == ["default", "1", "0", "1", "2", "0", "0"]
    assert lines[3].split() == ["mail", "2", "0", "0", "0", "0", "0"]
    assert f"Oldest waiting task: 10 min (#{busy_queue.pk} tests.app.tasks.add, queue mail)" in out
    assert "Failures in the last hour: 1" in out
    assert "Workers alive: 1" in out and "alive:1:abc  default,mail, concurrency 1" in out
    assert "app.jobs.nightly (cron 0 3 * * *)" in out
    assert "MISSING (function gone from the code)  app.jobs.gone" in out
    assert lines[-1] == "OK"


def test_status_is_unhealthy_without_a_recent_worker(busy_queue, settings):
    settings.AUTOTASK_LEASE_SECONDS = 30
    worker(seen_ago=timedelta(seconds=61))
    code, out, err = status()
    assert code == 1
    assert "UNHEALTHY: no worker has been seen in the last 1 min" in err
    assert status("--worker-timeout", "120")[0] == 0
    assert status("--no-worker-check")[0] == 0
    code, out, _ = status("--json")
    assert code == 1 and json.loads(out)["problems"] == ["no worker has been seen in the last 1 min"]


def test_status_max_wait(busy_queue):
    worker()
    assert status("--max-wait", "900")[0] == 0
    code, _, err = status("--max-wait", "300")
    assert code == 1
    assert f"the oldest waiting task (#{busy_queue.pk} tests.app.tasks.add) has waited 10 min" in err
    assert "more than 5 min" in err


def test_status_of_an_empty_queue():
    code, out, err = status("--no-worker-check", "--max-wait", "0")
    assert code == 0 and err == ""
    assert "no tasks" in out and "Oldest waiting task: none due" in out and "none registered" in out


@pytest.mark.parametrize("args", [("--max-wait", "-1"), ("--worker-timeout", "soon"), ("--max-wait", "nan")])
def test_status_rejects_bad_thresholds(args):
    with pytest.raises(CommandError, match="invalid"):
        call_command("autotask_status", *args)


@pytest.mark.django_db(transaction=True)
def test_status_sees_a_real_worker(worker_process):
    proc = worker_process()
    wait_for(lambda: Worker.objects.exists(), message="the worker's first heartbeat")
    code, out, _ = status("--json")
    data = json.loads(out)
    assert code == 0 and data["workers_alive"] == 1
    assert data["workers"][0]["pid"] == proc.pid
    proc.stop()
    # A worker that stops cleanly removes its row: nothing alive any more.
    assert status()[0] == 1


# -- autotask_clean ------------------------------------------------------------


@pytest.fixture
def expired():
    past, future = -timedelta(minutes=1), timedelta(minutes=10)
    rows = {
        "expired": [
            task(DONE, expires_in=past),
            task(DONE, expires_in=past),
            task(ERROR, expires_in=past),
            task(CANCELLED, expires_in=past),
        ],
        "kept": [
            task(DONE, expires_in=future),
            task(ERROR, expires_in=future),
            task(WAITING, expires_in=past),  # waiting and running tasks are never pruned
            task(RUNNING, expires_in=past),
        ],
    }
    return rows


def clean(*args):
    out = StringIO()
    call_command("autotask_clean", *args, stdout=out)
    return out.getvalue().strip()


def test_clean_dry_run_only_counts(expired):
    assert clean("--dry-run") == "Would delete 4 expired task rows (cancelled 1, done 2, error 1)."
    assert TaskQueue.objects.count() == 8


def test_clean_deletes_expired_results_only(expired):
    assert clean("--batch-size", "1") == "Deleted 4 expired task rows (cancelled 1, done 2, error 1)."
    assert set(TaskQueue.objects.values_list("pk", flat=True)) == {t.pk for t in expired["kept"]}
    assert clean() == "Deleted 0 expired task rows."


def test_clean_rejects_a_bad_batch_size():
    with pytest.raises(CommandError, match="invalid"):
        call_command("autotask_clean", "--batch-size", "0")


@pytest.fixture
def failures():
    return {
        "old": task(ERROR, finished_ago=timedelta(days=8), expires_in=None),
        "old_expiring": task(ERROR, finished_ago=timedelta(days=9), expires_in=timedelta(days=1)),
        "recent": task(ERROR, finished_ago=timedelta(days=6), expires_in=None),
        "done": task(DONE, finished_ago=timedelta(days=8), expires_in=timedelta(minutes=5)),
        "waiting": task(WAITING, finished_ago=timedelta(days=8)),
    }


@pytest.mark.parametrize("older_than", ["7d", "168h", "10080m", "604800", "604800s"])
def test_clean_deletes_failures_older_than(failures, older_than):
    assert clean("--failed-older-than", older_than) == (
        "Deleted 0 expired task rows.\nDeleted 2 failed tasks that finished more than 7 d ago."
    )
    kept = {failures[name].pk for name in ("recent", "done", "waiting")}
    assert set(TaskQueue.objects.values_list("pk", flat=True)) == kept


def test_clean_dry_run_counts_old_failures(failures):
    assert clean("--dry-run", "--failed-older-than", "12h") == (
        "Would delete 0 expired task rows.\nWould delete 3 failed tasks that finished more than 12 h ago."
    )
    assert TaskQueue.objects.count() == 5


@pytest.mark.parametrize("value", ["7x", "-1d", "d", "", "1.5.2h", "7 days"])
def test_clean_rejects_a_bad_duration(value):
    with pytest.raises(CommandError, match=r"invalid duration .*s, m, h or d"):
        call_command("autotask_clean", f"--failed-older-than={value}")


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0.0 s"),
        (4.24, "4.2 s"),
        (9.96, "10 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),
        (125, "2 min"),
        (3600, "1 h"),
        (3 * 3600 + 5 * 60, "3 h 5 min"),
        (86400, "1 d"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
        (-3, "0.0 s"),
    ],
)
def test_format_age(seconds, text):
    from autotask.monitor import format_age

    assert format_age(seconds) == text


def test_status_escapes_control_characters_from_the_database():
    """Stored names and errors cannot steer the terminal (ESC, BEL, bidi overrides)."""
    evil = "q\x1b[2J\x1b]0;owned\x07"
    task(WAITING, queue=evil, age=timedelta(minutes=5), function="shop.\x1b[31mred\u202e")
    Worker.objects.create(
        worker_id="w\x1b[1A:1:x", hostname="h", pid=1, queues=evil, last_seen=timezone.now()
    )
    code, out, err = status("--max-wait", "1")
    assert code == 1
    for text in (out, err):
        assert not _raw_escapes(text), text
    assert "q\\x1b[2J\\x1b]0;owned\\x07" in out
    assert "shop.\\x1b[31mred\\u202e" in out
    assert "w\\x1b[1A:1:x" in out
    code, out, _ = status("--json", "--max-wait", "1")
    assert "\x1b" not in out and "\x07" not in out
    assert "q\\u001b[2J\\u001b]0;owned\\u0007" in out  # JSON's own escapes
    assert evil in out.encode().decode("unicode_escape")


def _raw_escapes(text):
    """Control characters in ``text`` but newlines (the command adds no colour when piped)."""
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]


@pytest.fixture
def late_and_on_time():
    now = timezone.now()
    Schedule.objects.create(
        name="app.jobs.late", kind="periodic", spec="60", next_run_at=now - timedelta(minutes=3)
    )
    # Due a moment ago: within the scheduler's tick, not overdue.
    Schedule.objects.create(
        name="app.jobs.now", kind="periodic", spec="60", next_run_at=now - timedelta(seconds=2)
    )
    Schedule.objects.create(
        name="app.jobs.soon", kind="periodic", spec="60", next_run_at=now + timedelta(minutes=1)
    )


def test_status_flags_overdue_next_runs(late_and_on_time):
    _, out, _ = status("--json")
    by_name = {s["name"]: s for s in json.loads(out)["schedules"]}
    assert by_name["app.jobs.late"]["overdue"] is True
    assert 180 <= by_name["app.jobs.late"]["overdue_seconds"] < 240
    assert [by_name[n]["overdue"] for n in ("app.jobs.now", "app.jobs.soon")] == [False, False]
    assert by_name["app.jobs.soon"]["overdue_seconds"] is None
    _, out, _ = status()
    (late,) = [line for line in out.splitlines() if "app.jobs.late" in line]
    assert "OVERDUE by 3 min" in late
    assert [line for line in out.splitlines() if "OVERDUE" in line] == [late]
