"""Attempts a lost worker left behind count in the statistics when recovery ends them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import NewTask
from autotask.maintenance.recovery import recover
from autotask.models import TaskQueue, TaskStats, TaskStatsTotal

pytestmark = pytest.mark.django_db(transaction=True)


def abandoned(count, queue, max_attempts, started=True):
    """Insert ``count`` tasks claimed by a dead worker whose lease lapsed a second ago; their ids."""
    now = timezone.now()
    ops = get_ops()
    rows = [
        NewTask(
            function="tests.app.tasks.echo",
            args="[]",
            created_at=now,
            scheduled_at=now,
            queue=queue,
            max_attempts=max_attempts,
        )
        for _ in range(count)
    ]
    ids = ops.insert_tasks(rows)
    assert len(ops.claim("dead:1:x", [queue], count, now - timedelta(seconds=1), now)) == count
    if not started:
        TaskQueue.objects.filter(pk__in=ids).update(started_at=None, attempts=0)
    return ids


def test_recovery_counts_retried_and_failed_attempts():
    abandoned(2, "mail", max_attempts=1)  # no attempt left: ERROR
    abandoned(3, "default", max_attempts=3)  # retried
    abandoned(4, "default", max_attempts=1, started=False)  # claimed ahead, never started: not an attempt
    recovered, finished = recover(get_ops())
    assert (recovered, finished) == (9, True)
    totals = {(t.queue, t.outcome): t.count for t in TaskStatsTotal.objects.all()}
    assert totals == {("mail", "error"): 2, ("default", "retried"): 3}
    assert set(TaskStats.objects.values_list("worker_id", flat=True)) == {""}  # no worker's row
    assert sum(TaskStats.objects.values_list("count", flat=True)) == 5
