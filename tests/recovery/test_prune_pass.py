"""A prune pass, and how soon a worker prunes again when a pass leaves expired rows behind."""

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import NewTask
from autotask.maintenance import pruning
from autotask.models import TaskQueue
from autotask.task import DONE
from autotask.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def expired(count):
    """Insert ``count`` finished tasks whose ttl lapsed a second ago; their ids."""
    now = timezone.now()
    rows = [
        NewTask(function="tests.app.tasks.echo", args=json.dumps(i), created_at=now, scheduled_at=now)
        for i in range(count)
    ]
    ids = get_ops().insert_tasks(rows)
    TaskQueue.objects.filter(pk__in=ids).update(status=DONE, expires_at=now - timedelta(seconds=1))
    return ids


def test_a_prune_pass_out_of_time_says_so():
    expired(5)
    assert pruning.prune_pass(get_ops(), batch=2, budget=0.0) == (2, False)
    assert pruning.prune_pass(get_ops(), batch=2) == (3, True)
    assert not TaskQueue.objects.exists()


def test_prune_returns_how_many_it_deleted():
    expired(3)
    assert pruning.prune(get_ops(), batch=2) == 3


@override_settings(AUTOTASK_CLEAN_BATCH_SIZE=2)
def test_a_worker_prunes_again_soon_while_expired_rows_are_left(monkeypatch):
    """Not a clean interval later: pruning keeps up with any sustained rate of finished tasks."""
    expired(5)
    monkeypatch.setattr(pruning, "PRUNE_TIME_BUDGET", 0.0)  # one batch per pass
    worker = Worker(concurrency=1, handle_signals=False, listen=False)
    passes = []
    try:
        for _ in range(3):
            worker.timers.set_next("prune", float("inf"))  # as if the next pass were far off
            worker._duty_prune(timezone.now())
            passes.append((TaskQueue.objects.count(), worker.timers.next["prune"] != float("inf")))
    finally:
        worker.ops.reset_connection()
        worker.wakeups.close()
    # Two full batches ask for another pass soon; the short third one found the last row.
    assert passes == [(3, True), (1, True), (0, False)]
