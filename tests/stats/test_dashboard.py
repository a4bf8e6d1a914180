"""monitor.dashboard(): the agreed shape, and figures summed over workers from the statistics."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from autotask import monitor
from autotask.models import HISTOGRAM_BOUNDS_MS, Schedule, TaskQueue, TaskStats, Worker, bucket_fields
from autotask.task import DONE, RUNNING, WAITING

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 4, 12, 30, 20, tzinfo=UTC)
SERIES = (
    "t",
    "done",
    "error",
    "retried",
    "cancelled",
    "pickup_p50_ms",
    "pickup_p95_ms",
    "run_p50_ms",
    "run_p95_ms",
)


def stats(minute, worker, outcome, count, pickup_bucket=0, run_bucket=0, queue="default"):
    """A minute row of ``count`` tasks, all in one pickup and one run bucket (none when cancelled)."""
    buckets = {bucket_fields("pickup")[pickup_bucket]: count, bucket_fields("run")[run_bucket]: count}
    return TaskStats.objects.create(
        minute=minute,
        worker_id=worker,
        queue=queue,
        outcome=outcome,
        count=count,
        **(buckets if outcome != "cancelled" else {}),
    )


def test_shape_of_an_empty_queue():
    data = monitor.dashboard("hour", now=NOW)
    assert set(data) == {"now", "window", "step_seconds", "series", "depth", "workers", "schedules"}
    assert data["window"] == "hour" and data["step_seconds"] == 60
    assert set(data["series"]) == set(SERIES)
    assert all(len(data["series"][key]) == 60 for key in SERIES)
    assert data["series"]["t"][-1] == "2026-12-04T12:30:00+00:00"
    assert data["series"]["t"][0] == "2026-12-04T11:31:00+00:00"
    assert data["series"]["done"] == [0] * 60 and data["series"]["run_p95_ms"] == [None] * 60
    assert data["depth"] == [] and data["workers"] == [] and data["schedules"] == []
    json.dumps(data)  # JSON-ready as it is


def test_day_window_has_ten_minute_points():
    data = monitor.dashboard("day", now=NOW)
    assert data["step_seconds"] == 600
    assert len(data["series"]["t"]) == 144
    assert data["series"]["t"][-1] == "2026-12-04T12:30:00+00:00"


def test_a_bad_window_is_refused():
    with pytest.raises(ValueError, match="window must be one of 'hour', 'day', not 'week'"):
        monitor.dashboard("week")


def test_series_sum_workers_and_queues_per_bucket():
    minute = datetime(2026, 12, 4, 12, 29, tzinfo=UTC)
    stats(minute, "w1", "done", 3, pickup_bucket=0, run_bucket=4)
    stats(minute, "w2", "done", 1, pickup_bucket=2, run_bucket=4, queue="mail")
    stats(minute, "w2", "error", 2, pickup_bucket=0, run_bucket=6)
    stats(minute, "w1", "cancelled", 5)
    stats(minute - timedelta(hours=2), "w1", "done", 7)  # outside the hour
    stats(minute + timedelta(minutes=1), "w1", "retried", 1)  # the current minute
    series = monitor.dashboard("hour", now=NOW)["series"]
    assert series["done"][-2:] == [4, 0]
    assert series["error"][-2:] == [2, 0]
    assert series["cancelled"][-2:] == [5, 0]
    assert series["retried"][-2:] == [0, 1]
    assert sum(series["done"]) == 4
    # 6 runs in the minute: 4 in (50, 100] ms, 2 in (250, 500] ms; p50 in the first, p95 in the second.
    assert 50 < series["run_p50_ms"][-2] <= 100
    assert 250 < series["run_p95_ms"][-2] <= 500
    assert series["pickup_p50_ms"][-2] <= HISTOGRAM_BOUNDS_MS[0]
    assert series["pickup_p95_ms"][-3] is None
    day = monitor.dashboard("day", now=NOW)["series"]
    assert day["done"][-2] == 4 and day["retried"][-1] == 1  # 12:20-12:30, and the current 12:30-12:40
    assert sum(day["done"]) == 11


def test_percentile():
    buckets = [0] * (len(HISTOGRAM_BOUNDS_MS) + 1)
    assert monitor.percentile(buckets, 0.5) is None
    buckets[1] = 10  # ten values in (5, 10] ms
    assert monitor.percentile(buckets, 0.5) == 7.5
    buckets[-1] = 90  # slower than the last bound
    assert monitor.percentile(buckets, 0.95) == float(HISTOGRAM_BOUNDS_MS[-1])


def test_depth_workers_and_schedules():
    now = timezone.now()

    def task(status, queue="default", due=-5.0, **fields):
        at = now + timedelta(seconds=due)
        return TaskQueue.objects.create(
            function="tests.app.tasks.add", status=status, queue=queue, scheduled_at=at, **fields
        )

    task(WAITING, due=-30)
    task(WAITING, due=-5)
    task(WAITING, due=3600)  # not due yet
    task(WAITING, queue="mail", due=60)
    running = task(RUNNING, queue="mail", worker_id="host:1:a", started_at=now)
    ahead = task(RUNNING, queue="mail", worker_id="host:1:a")  # claimed ahead, not started
    task(DONE, finished_at=now, expires_at=now + timedelta(minutes=5))
    Worker.objects.create(
        worker_id="host:1:a", hostname="host", pid=1, queues="", concurrency=4, last_seen=now
    )
    Worker.objects.create(
        worker_id="host:2:b", hostname="host", pid=2, last_seen=now - timedelta(seconds=300)
    )  # silent: not alive
    Schedule.objects.create(name="tests.app.tasks.add", kind="periodic", spec="60", next_run_at=now)
    data = monitor.dashboard(now=now)
    assert data["depth"] == [
        {"queue": "default", "waiting": 3, "due": 2, "running": 0, "oldest_due_seconds": 30.0},
        {"queue": "mail", "waiting": 1, "due": 0, "running": 2, "oldest_due_seconds": None},
    ]
    [worker] = data["workers"]
    assert worker["worker_id"] == "host:1:a" and worker["concurrency"] == 4
    assert worker["running"] == [
        {"id": running.pk, "function": "tests.app.tasks.add", "started_at": now.isoformat()},
        {"id": ahead.pk, "function": "tests.app.tasks.add", "started_at": None},
    ]
    [schedule] = data["schedules"]
    assert schedule["name"] == "tests.app.tasks.add" and schedule["next_run_at"] == now.isoformat()
    assert schedule["last_run_at"] is None and schedule["last_status"] is None
    json.dumps(data)


def test_autotask_status_counts_the_last_hour_from_the_statistics():
    from io import StringIO

    from django.core.management import call_command

    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    stats(minute, "w1", "done", 4)
    stats(minute - timedelta(minutes=30), "w2", "done", 1)
    stats(minute - timedelta(minutes=30), "w2", "error", 2)
    stats(minute - timedelta(hours=2), "w1", "done", 100)  # outside the hour
    out = StringIO()
    with pytest.raises(SystemExit):  # no worker: unhealthy, the figures are printed anyway
        call_command("autotask_status", "--json", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["finished_last_hour"] == {
        "done": 5,
        "error": 2,
        "retried": 0,
        "cancelled": 0,
    }
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("autotask_status", stdout=out, stderr=StringIO())
    assert "Finished in the last hour: 5 done, 2 error, 0 retried, 0 cancelled" in out.getvalue()
