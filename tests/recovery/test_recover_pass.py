"""A recovery pass, run here on forged lapsed leases: every one of them, at the time it really happens."""

import json
import time
from datetime import datetime, timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import NewTask
from autotask.maintenance import recovery as maintenance
from autotask.models import TaskQueue
from autotask.task import ERROR, RUNNING, WAITING
from autotask.worker import Worker
from autotask.worker import loop as worker_loop

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = timedelta(seconds=30)
WORKER_LOST = "autotask.exceptions.WorkerLost"


def abandoned(count, started=True, max_attempts=1):
    """Insert ``count`` tasks held by a dead worker whose lease lapsed a second ago; their ids."""
    now = timezone.now()
    ops = get_ops()
    rows = [
        NewTask(
            function="tests.app.tasks.echo",
            args=json.dumps(i),
            created_at=now,
            scheduled_at=now,
            max_attempts=max_attempts,
        )
        for i in range(count)
    ]
    ids = ops.insert_tasks(rows)
    assert len(ops.claim("dead:1:x", None, count, now - timedelta(seconds=1), now)) == count
    if not started:
        TaskQueue.objects.filter(pk__in=ids).update(started_at=None, attempts=0)
    return ids


def test_one_pass_recovers_more_than_one_batch():
    started = abandoned(maintenance.RECOVER_BATCH + 30)
    unstarted = abandoned(maintenance.RECOVER_BATCH + 20, started=False)
    count, finished = maintenance.recover(get_ops())
    assert (count, finished) == (len(started) + len(unstarted), True)
    assert not TaskQueue.objects.filter(status=RUNNING).exists()
    assert set(TaskQueue.objects.filter(pk__in=started).values_list("status", "attempts")) == {(ERROR, 1)}
    # Claimed ahead, never started: waiting again, no attempt used, no error, no history.
    assert set(
        TaskQueue.objects.filter(pk__in=unstarted).values_list(
            "status", "attempts", "error_message", "worker_id"
        )
    ) == {(WAITING, 0, "", "")}
    assert not any(TaskQueue.objects.filter(pk__in=unstarted).values_list("history", flat=True))


def test_a_pass_out_of_time_asks_for_the_next_at_once():
    abandoned(5)
    count, finished = maintenance.recover(get_ops(), batch=2, budget=0.0)
    assert (count, finished) == (2, False)
    assert maintenance.recover(get_ops(), batch=2) == (3, True)


def test_recovery_after_an_outage_records_when_it_happened(monkeypatch):
    """The worker's duties wait out a database outage; recovery writes the time it really ran."""
    (pk,) = abandoned(1)
    worker = Worker(concurrency=1, handle_signals=False, listen=False)
    outage = {}

    def heartbeat_in_an_outage(worker, now):
        time.sleep(0.3)  # the connection attempt hangs, then fails
        outage["ended"] = timezone.now()
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(worker_loop, "heartbeat", heartbeat_in_an_outage)
    try:
        worker.timers.next = {"heartbeat": 0.0, "recover": 0.0}  # both due, heartbeat first
        worker._maintain()
    finally:
        worker.ops.reset_connection()
        worker.wakeups.close()
    row = TaskQueue.objects.get(pk=pk)
    assert row.status == ERROR
    (entry,) = [h for h in row.history if h.get("exception") == WORKER_LOST]
    assert datetime.fromisoformat(entry["finished_at"]) >= outage["ended"]
    assert row.finished_at >= outage["ended"]
    assert f"recovered at {entry['finished_at']}" in row.error_message
