"""Workers claim short tasks ahead of their free slots, yet never hold them back from others.

A worker whose tasks prove short claims a batch beyond its free slots.  Those
tasks are RUNNING under its lease before they start, so what it does with them
when a slot stays busy, or when it is told to stop, decides whether another
worker can run them and whether their attempts stay true.
"""

import signal

import pytest

from autotask.models import TaskQueue
from autotask.tasks import DONE, RUNNING, WAITING
from tests.app import gated, tasks
from tests.conftest import records, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
HEAD, TAIL = 300, 100  # short tasks before the gated one (a worker learns they are short), and after it
BATCH = 600  # short tasks a worker is stopped in the middle of


def rows(handles):
    return TaskQueue.objects.filter(pk__in=[h.pk for h in handles])


def enqueue_around_a_gate(path):
    head = tasks.record.enqueue_many((f"head{i}",) for i in range(HEAD))
    blocker = gated.gated(str(path))
    tail = tasks.record.enqueue_many((f"tail{i}",) for i in range(TAIL))
    return head, blocker, tail


def running(handle):
    return lambda: TaskQueue.objects.filter(pk=handle.pk, status=RUNNING).exists()


def test_a_long_task_does_not_hold_back_the_tasks_claimed_after_it(worker_process, tmp_path):
    gate = tmp_path / "open"
    _, blocker, tail = enqueue_around_a_gate(gate)
    worker_process("--concurrency", "1")
    wait_for(running(blocker), timeout=30, message="the gated task to start")
    second = worker_process("--concurrency", "1")
    wait_for(lambda: rows(tail).filter(status=DONE).count() == TAIL, timeout=30, message="the tail to run")
    # The tail ran while the gated task still held the first worker's only slot.
    assert TaskQueue.objects.get(pk=blocker.pk).status == RUNNING
    runners = {row.history[-1]["worker_id"].split(":")[1] for row in rows(tail)}
    assert str(second.pid) in runners, runners
    gate.touch()
    wait_for(lambda: blocker.ready, timeout=30, message="the gated task to finish")
    assert sorted(records("tail")) == sorted(f"tail{i}" for i in range(TAIL))  # each exactly once
    # Tasks given back were never started there: one attempt each, where they ran.
    assert set(rows(tail).values_list("attempts", flat=True)) == {1}


def test_graceful_stop_gives_claimed_ahead_tasks_back_unstarted(worker_process):
    handles = tasks.record.enqueue_many((f"s{i}",) for i in range(BATCH))
    worker = worker_process("--concurrency", "2")
    wait_for(lambda: rows(handles).filter(status=DONE).count() >= 50, timeout=30, message="a first batch")
    worker.signal(signal.SIGTERM)
    code, output = worker.wait(30)
    assert code == 0, output
    assert not rows(handles).filter(status=RUNNING).exists()
    waiting = rows(handles).filter(status=WAITING)
    assert waiting.exists()  # it stopped before the end
    # As if never claimed: no attempt counted, no worker named, no lease.
    assert set(waiting.values_list("attempts", "worker_id", "lease_expires_at")) == {(0, "", None)}
    worker_process("--concurrency", "2")
    wait_for(lambda: rows(handles).filter(status=DONE).count() == BATCH, timeout=60, message="the rest")
    assert sorted(records("s")) == sorted(f"s{i}" for i in range(BATCH))
    assert set(rows(handles).values_list("attempts", flat=True)) == {1}
