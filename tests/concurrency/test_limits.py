"""Concurrency and rate limits hold across real worker processes (6 on PostgreSQL, 4 elsewhere).

Each run appends its own record (tests/app/limited_tasks.py); the checks
read those records, not the queue's bookkeeping.
"""

import collections
import os
import signal
import time

import pytest
from django.db import connection

from autotask.models import FlowKey, RateStart, TaskQueue, Worker
from autotask.task import DONE, HELD, WAITING
from tests.app import limited_tasks
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def workers_for_vendor():
    return 6 if connection.vendor == "postgresql" else 4


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def max_overlap(intervals):
    """The most intervals (begin, end) open at one instant (an end before a begin at a tie)."""
    events = sorted([(begin, 1) for begin, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def start_workers(worker_process, log, count, concurrency="4"):
    env = {"AUTOTASK_TEST_FLOW_LOG": str(log)}
    workers = [worker_process("--concurrency", concurrency, env=env) for _ in range(count)]
    wait_for(lambda: Worker.objects.count() == count, timeout=60, message=f"{count} workers to start")
    return workers


def test_never_more_than_the_limit_per_key_run_at_once(worker_process, tmp_path, monkeypatch):
    log = tmp_path / "flow.log"
    monkeypatch.setenv("AUTOTASK_TEST_FLOW_LOG", str(log))
    count = workers_for_vendor()
    workers = start_workers(worker_process, log, count)
    groups, per_group = 4, 30
    calls = [(g, n) for n in range(per_group) for g in range(groups)]
    handles = limited_tasks.limited.enqueue_many(calls)
    # A second batch from one-by-one enqueues, racing the first one's admissions.
    handles += [limited_tasks.limited(g, per_group + n) for n in range(5) for g in range(groups)]
    total = len(handles)
    wait_for(
        lambda: TaskQueue.objects.filter(status=DONE).count() == total,
        timeout=240,
        interval=0.2,
        message=f"{total} limited tasks to finish",
    )
    for worker in workers:
        code, out = worker.stop()
        assert code == 0, out

    runs = [line for line in read_log(log) if line[0] == "run"]
    assert len(runs) == total, "each task ran exactly once"
    by_group = collections.defaultdict(list)
    for _, group, _n, begin, end, _pid in runs:
        by_group[group].append((float(begin), float(end)))
    assert set(by_group) == {str(g) for g in range(groups)}
    peaks = {group: max_overlap(intervals) for group, intervals in by_group.items()}
    assert max(peaks.values()) <= 2, f"more than 2 of a key ran at once: {peaks}"
    # The limit was reached, so the check above could have failed.
    assert max(peaks.values()) == 2, peaks
    assert len({line[5] for line in runs}) > 1, "several workers took part"
    assert not TaskQueue.objects.filter(status__in=(HELD, WAITING)).exists()


def test_rate_never_exceeded_in_any_window(worker_process, tmp_path, monkeypatch):
    log = tmp_path / "flow.log"
    monkeypatch.setenv("AUTOTASK_TEST_FLOW_LOG", str(log))
    count = workers_for_vendor()
    workers = start_workers(worker_process, log, count)
    per_group = 16  # 5/s: about three seconds per group
    handles = limited_tasks.rated.enqueue_many([("a", n) for n in range(per_group)])
    handles += limited_tasks.rated.enqueue_many([("b", n) for n in range(per_group)])
    total = len(handles)
    wait_for(
        lambda: TaskQueue.objects.filter(status=DONE).count() == total,
        timeout=120,
        interval=0.2,
        message=f"{total} rate-limited tasks to finish",
    )
    for worker in workers:
        code, out = worker.stop()
        assert code == 0, out

    starts = [line for line in read_log(log) if line[0] == "start"]
    assert len(starts) == total
    by_group = collections.defaultdict(list)
    for _, group, _n, started, _pid in starts:
        by_group[group].append(float(started))
    for group, moments in by_group.items():
        moments.sort()
        # No window of one second holds more than 5 starts: the 6th after any start is >= 1 s later.
        gaps = [moments[i + 5] - moments[i] for i in range(len(moments) - 5)]
        assert min(gaps) >= 1.0 - 1e-6, f"group {group}: 6 starts within {min(gaps):.3f}s"
    # Nothing was lost or failed, and the over-limit waits cost no attempt.
    assert set(TaskQueue.objects.values_list("attempts", flat=True)) == {1}
    assert RateStart.objects.filter(key="rate-a").exists()
    assert FlowKey.objects.filter(key="r:rate-a", limit=5, window=1.0).exists()


def test_a_worker_killed_mid_run_gives_its_slot_back_through_recovery(worker_process, tmp_path, monkeypatch):
    """SIGKILL a worker running a task of a key limited to 1: the lease lapses, recovery retries
    the task, which keeps the slot; the others run after it, one at a time."""
    log = tmp_path / "flow.log"
    monkeypatch.setenv("AUTOTASK_TEST_FLOW_LOG", str(log))
    env = {"AUTOTASK_TEST_FLOW_LOG": str(log), "AUTOTASK_TEST_LEASE_SECONDS": "2"}
    victim = worker_process("--concurrency", "2", env=env)
    handles = [limited_tasks.crash_slot(n, 1.5 if n == 0 else 0.05) for n in range(4)]
    wait_for(lambda: any(line[0] == "begin" for line in read_log(log)), timeout=60, message="a first run")
    victim.signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.time()
    survivors = [worker_process("--concurrency", "2", env=env) for _ in range(2)]
    wait_for(
        lambda: TaskQueue.objects.filter(pk__in=[h.pk for h in handles], status=DONE).count() == 4,
        timeout=120,
        interval=0.2,
        message="the 4 tasks to finish after the crash",
    )
    for worker in survivors:
        code, out = worker.stop()
        assert code == 0, out
    lines = read_log(log)
    killed = [line for line in lines if line[0] == "begin" and line[4] == str(victim.pid)]
    assert killed, "the killed worker had started a task"
    runs = [(float(line[3]), float(line[4])) for line in lines if line[0] == "run"]
    assert len(runs) == 4
    # The killed run held the slot until it was killed: no other run overlaps it, nor each other.
    assert max_overlap([*runs, (float(killed[0][3]), killed_at)]) == 1
    assert TaskQueue.objects.get(pk=handles[0].pk).attempts == 2  # recovered and retried
