"""A dashboard refresh: a few indexed queries, never a full scan of the task table.

The task table holds what a busy queue keeps: many finished rows (results
kept for their ttl, failures for a week), a backlog waiting for later, a few
due and running tasks; analyzed.  The statistics table holds two days of
minute rows of several workers.  Every statement ``dashboard()`` runs is
explained and its plan asserted, never a time.

Queue depth counts the WAITING rows through their partial index: a backlog
that is most of the table is counted by reading it (the planner rightly
prefers the table then), so the figures here keep the backlog a minority.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from autotask import monitor
from autotask.models import TaskQueue, TaskStats, Worker
from autotask.task import DONE, ERROR, RUNNING
from tests.db.test_plan import VENDOR, executed, explain, insert, new_task, now, ops, plans

pytestmark = [pytest.mark.django_db, plans]
__all__ = ["now", "ops"]  # fixtures, used by name
WORKERS = 8
STATS_DAYS = 2
FINISHED_ROWS = 20_000
LATER_ROWS = 1_000  # waiting, due tomorrow


@pytest.fixture
def big_table(ops, now):
    """Many finished rows, a backlog due tomorrow and five due tasks, in three queues; analyzed."""
    finished = insert(
        ops, [new_task(now - timedelta(hours=1), f"done{i}", queue=f"q{i % 3}") for i in range(FINISHED_ROWS)]
    )
    for status, ids in ((DONE, finished[::2]), (ERROR, finished[1::2])):
        TaskQueue.objects.filter(pk__in=ids).update(
            status=status, finished_at=now, expires_at=now + timedelta(days=7), worker_id="gone"
        )
    insert(ops, [new_task(now, f"later{i}", delay=86_400 + i, queue=f"q{i % 3}") for i in range(LATER_ROWS)])
    due = insert(ops, [new_task(now - timedelta(seconds=5), f"due{i}", queue=f"q{i % 3}") for i in range(5)])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ops.table}")
    return due


@pytest.fixture
def stats_table(now):
    """Two days of minute rows of WORKERS workers, one queue and outcome each; analyzed."""
    first = now.replace(second=0, microsecond=0) - timedelta(days=STATS_DAYS)
    rows = [
        TaskStats(minute=first + timedelta(minutes=m), worker_id=f"w{w}", queue="q0", outcome="done", count=1)
        for m in range(STATS_DAYS * 24 * 60)
        for w in range(WORKERS)
    ]
    TaskStats.objects.bulk_create(rows, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TaskStats._meta.db_table}")


@pytest.fixture
def running(big_table, now):
    """A worker alive, running three of the due tasks."""
    Worker.objects.create(worker_id="w", hostname="h", pid=1, last_seen=now)
    TaskQueue.objects.filter(pk__in=big_table[:3]).update(status=RUNNING, worker_id="w", started_at=now)


def assert_no_full_scan(plan, table=TaskQueue._meta.db_table):
    """No node reads the whole of ``table`` (sorting or grouping the few rows an index found is fine)."""
    if VENDOR == "postgresql":
        assert f"Seq Scan on {table}" not in plan, plan
    else:
        assert not re.search(rf"\bSCAN {table}\s*$", plan, re.MULTILINE), plan


def statements(window, now):
    """Return the (sql, params) of every statement a refresh runs."""
    return executed(lambda: monitor.dashboard(window, now=now))


@pytest.mark.parametrize("window", ["hour", "day"])
def test_a_refresh_reads_the_task_table_through_its_indexes(window, now, running, stats_table):
    seen = statements(window, now)
    # Statistics, waiting depth, running depth, workers, their running tasks,
    # schedules: six queries, none per task, worker or bucket.
    assert len(seen) == 6, [sql for sql, _ in seen]
    task_table = [(sql, params) for sql, params in seen if TaskQueue._meta.db_table in sql]
    assert len(task_table) == 3  # waiting depth, running depth, the running tasks
    for sql, params in task_table:
        assert_no_full_scan(explain(sql, params))


def test_the_hour_reads_only_its_minutes(now, stats_table):
    [(sql, params)] = [s for s in statements("hour", now) if TaskStats._meta.db_table in s[0]]
    plan = explain(sql, params)
    assert_no_full_scan(plan, TaskStats._meta.db_table)
    if VENDOR == "postgresql":
        assert "autotask_stats_minute_key" in plan, plan
    else:  # SQLite's index of the unique constraint, searched by the minute
        assert re.search(r"SEARCH autotask_taskstats USING INDEX \S+ \(minute>\?\)", plan), plan


def test_the_figures_of_a_full_table_are_right(now, running):
    data = monitor.dashboard(now=now)
    depth = {row["queue"]: row for row in data["depth"]}
    assert sum(row["waiting"] for row in depth.values()) == LATER_ROWS + 2  # tomorrow's, and two due
    assert sum(row["due"] for row in depth.values()) == 2
    assert sum(row["running"] for row in depth.values()) == 3
    assert [len(w["running"]) for w in data["workers"]] == [3]
    assert datetime.fromisoformat(data["now"]).astimezone(UTC) == now


def test_the_health_verdict_and_a_scrape_read_the_task_table_through_its_indexes(now, running):
    from autotask.prometheus import registry

    seen = executed(lambda: (monitor.health(now=now), list(registry().collect())))
    task_table = [(sql, params) for sql, params in seen if TaskQueue._meta.db_table in sql]
    assert len(task_table) == 3  # the oldest due task; waiting and running depth
    for sql, params in task_table:
        assert_no_full_scan(explain(sql, params))
