"""What a graceful stop does with the tasks a worker has claimed but not started.

A claim marks its tasks RUNNING before a pool thread picks them up.  Those
claimed for a free slot are the worker's current tasks and start even when the
stop comes first; only those claimed ahead of the free slots go back.
"""

from collections import deque

import pytest

from autotask.worker import Worker


@pytest.fixture
def worker():
    w = Worker(concurrency=2, handle_signals=False, listen=False)
    yield w
    w.wakeups.close()


def test_the_stop_keeps_one_task_per_free_slot_oldest_first(worker):
    worker.pool.ready = deque(["t1", "t2", "t3", "t4"])
    assert sorted(worker.pool.take_ready(keep=worker.concurrency)) == ["t3", "t4"]
    assert list(worker.pool.ready) == ["t1", "t2"]


def test_a_busy_slot_keeps_no_task(worker):
    worker.pool.ready = deque(["t1", "t2", "t3"])
    worker.pool.executing = 1
    assert sorted(worker.pool.take_ready(keep=worker.concurrency)) == ["t2", "t3"]
    assert list(worker.pool.ready) == ["t1"]
    worker.pool.executing = 2
    assert worker.pool.take_ready(keep=worker.concurrency) == ["t1"]


def test_giving_back_held_tasks_takes_them_all(worker):
    worker.pool.ready = deque(["t1", "t2"])
    assert sorted(worker.pool.take_ready()) == ["t1", "t2"]


def test_a_pool_thread_starts_a_kept_task_after_the_stop(worker, monkeypatch):
    started = []
    monkeypatch.setattr(worker.pool, "_execute", started.append)
    worker.pool.ready = deque(["t1"])
    worker.stop_state.stopping = True
    worker.pool.run_ready()
    assert started == ["t1"]
    assert worker.pool.executing == 0


class Pool:
    """Records what the worker hands to its pool threads."""

    def __init__(self):
        self.submitted = []

    def submit(self, func):
        self.submitted.append(func)


def test_a_kept_task_gets_a_pool_thread_when_the_last_one_has_ended(worker, monkeypatch):
    # The last pool thread found the buffer empty and ended just before the
    # claim that filled it: without a new thread the stop would wait forever.
    for name in ("_flush", "_maintain", "_wait"):
        monkeypatch.setattr(worker, name, lambda *args: None)
    monkeypatch.setattr(worker, "_give_back", lambda tasks: None)
    worker.pool.ready, worker.pool.running, worker.pool.runners = deque(["t1"]), 1, 0
    worker.stop_state.stopping = True
    pool = Pool()
    assert worker._stopping_turn(pool) is False
    assert pool.submitted == [worker.pool.run_ready]
    assert list(worker.pool.ready) == ["t1"]


def test_the_stop_ends_once_nothing_runs(worker, monkeypatch):
    for name in ("_flush", "_maintain", "_wait"):
        monkeypatch.setattr(worker, name, lambda *args: None)
    worker.stop_state.stopping = True
    assert worker._stopping_turn(Pool()) is True
