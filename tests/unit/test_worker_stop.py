"""What a graceful stop does with the tasks a worker has claimed but not started.

A claim marks its tasks RUNNING before a pool thread picks them up.  Those
claimed for a free slot are the worker's current tasks and start even when the
stop comes first; only those claimed ahead of the free slots go back.
"""

import os
from collections import deque

import pytest

from autotask.worker import Worker


@pytest.fixture
def worker():
    w = Worker(concurrency=2, handle_signals=False, listen=False)
    yield w
    os.close(w.wake_r)
    os.close(w.wake_w)


def test_the_stop_keeps_one_task_per_free_slot_oldest_first(worker):
    worker.ready = deque(["t1", "t2", "t3", "t4"])
    assert sorted(worker._take_ready(keep=worker.concurrency)) == ["t3", "t4"]
    assert list(worker.ready) == ["t1", "t2"]


def test_a_busy_slot_keeps_no_task(worker):
    worker.ready = deque(["t1", "t2", "t3"])
    worker.executing = 1
    assert sorted(worker._take_ready(keep=worker.concurrency)) == ["t2", "t3"]
    assert list(worker.ready) == ["t1"]
    worker.executing = 2
    assert worker._take_ready(keep=worker.concurrency) == ["t1"]


def test_giving_back_held_tasks_takes_them_all(worker):
    worker.ready = deque(["t1", "t2"])
    assert sorted(worker._take_ready()) == ["t1", "t2"]


def test_a_pool_thread_starts_a_kept_task_after_the_stop(worker, monkeypatch):
    started = []
    monkeypatch.setattr(worker, "_execute", started.append)
    worker.ready = deque(["t1"])
    worker.stopping = True
    worker._run_ready()
    assert started == ["t1"]
    assert worker.executing == 0
