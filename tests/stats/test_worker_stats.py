"""Statistics written by real worker processes, summed over workers by the dashboard."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from autotask import monitor
from autotask.models import TaskQueue, TaskStats, TaskStatsTotal, bucket_fields
from autotask.tasks import DelayedTask
from tests.app import tasks
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def totals():
    """Return {(queue, outcome): count} of the totals table."""
    return {(t.queue, t.outcome): t.count for t in TaskStatsTotal.objects.all()}


def dashboard_sum(outcome):
    return sum(monitor.dashboard("hour")["series"][outcome])


def test_two_workers_write_minute_rows_and_totals(worker_process, tmp_path):
    worker_process("--concurrency", "2")
    worker_process("--concurrency", "2")
    handles = [tasks.add(i, i) for i in range(30)] + [tasks.add.using(queue="mail")(1, 1) for _ in range(5)]
    failed = [tasks.boom() for _ in range(3)]
    flaky = tasks.flaky(str(tmp_path), 1)  # one retry, then done
    for handle in [*handles, *failed, flaky]:
        assert handle.wait(30)
    expected = {
        ("default", "done"): 31,
        ("mail", "done"): 5,
        ("default", "error"): 3,
        ("default", "retried"): 1,
    }
    wait_for(lambda: totals() == expected, message=f"the totals {expected}, last {totals()}")
    assert dashboard_sum("done") == 36
    assert dashboard_sum("error") == 3
    assert dashboard_sum("retried") == 1
    rows = TaskStats.objects.all()
    # Each worker writes its own rows: no row holds two workers' tasks.
    assert rows.values("minute", "worker_id", "queue", "outcome").distinct().count() == rows.count()
    # Every counted task is in exactly one bucket of each histogram.
    for measure in ("pickup", "run"):
        sums = rows.aggregate(**{name: Sum(name) for name in ["count", *bucket_fields(measure)]})
        assert sum(sums[name] for name in bucket_fields(measure)) == sums["count"]
    series = monitor.dashboard("hour")["series"]
    assert any(value is not None for value in series["run_p95_ms"])
    assert all(value is None or value >= 0 for value in series["pickup_p50_ms"])


def test_pickup_delay_counts_from_the_due_time(worker_process):
    # Due ten minutes ago: its pickup delay is at least that long.
    handle = tasks.add(1, 2)
    TaskQueue.objects.filter(pk=handle.pk).update(scheduled_at=timezone.now() - timedelta(minutes=10))
    worker_process()
    assert handle.wait(30)
    wait_for(lambda: totals().get(("default", "done")) == 1, message="the task counted")
    total = TaskStatsTotal.objects.get(queue="default", outcome="done")
    assert total.pickup_ms_sum >= 600_000
    assert total.pickup_b14 == 1  # slower than the last bound (300 s)


def test_cancelled_tasks_are_counted():
    handles = [tasks.add.using(delay=3600, queue="mail")(1, 1) for _ in range(3)]
    assert DelayedTask(handles[0].pk).cancel() is True
    assert TaskQueue.objects.filter(pk__in=[h.pk for h in handles]).cancel_waiting() == 2
    assert TaskQueue.objects.filter(pk__in=[h.pk for h in handles]).cancel_waiting() == 0
    assert totals() == {("mail", "cancelled"): 3}
    assert dashboard_sum("cancelled") == 3


def test_a_worker_prunes_minute_rows_past_stats_keep(worker_process):
    now = timezone.now().replace(second=0, microsecond=0)
    for age in (timedelta(days=3), timedelta(days=1, hours=23)):
        TaskStats.objects.create(minute=now - age, worker_id="gone", queue="default", outcome="done", count=1)
    TaskStatsTotal.objects.create(queue="default", outcome="done", count=2)
    worker_process()  # prunes at start-up, then every AUTOTASK_CLEAN_INTERVALL
    wait_for(lambda: TaskStats.objects.count() == 1, message="the three-day-old row pruned")
    assert TaskStats.objects.get().minute == now - timedelta(days=1, hours=23)  # within two days: kept
    assert TaskStatsTotal.objects.get().count == 2  # totals are never pruned
