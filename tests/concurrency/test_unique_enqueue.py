"""Unique tasks under concurrent enqueue from several processes: one task per key, never two.

Six processes on PostgreSQL, four on SQLite and MariaDB, each enqueuing the
same keys in its own order at the same moment.
"""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from django.db import connection

from autotask.models import TaskQueue, Worker
from autotask.task import DONE
from tests.conftest import ROOT, records, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROCESSES = 6 if connection.vendor == "postgresql" else 4
KEYS = 150
START_TIMEOUT = 60.0  # seconds: Django processes starting on a busy two-core machine
RUN_TIMEOUT = 180.0
ENQUEUER = "tests.concurrency.unique_enqueuer"


def race(task_name, tmp_path):
    """Start PROCESSES enqueuers of ``task_name``, release them at once; return their results."""
    start_file = tmp_path / "start"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AUTOTASK_TEST_DB_NAME": connection.settings_dict["NAME"],
        "PYTHONPATH": str(ROOT),
        "AUTOTASK_TEST_WORKER_AUTOSTART": "0",  # no worker beside each enqueuer: the test says which run
    }
    command = [sys.executable, "-m", ENQUEUER, task_name, str(KEYS), str(start_file)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, **pipes) for _ in range(PROCESSES)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        start_file.touch()
        outputs = [proc.communicate(timeout=RUN_TIMEOUT) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    return [json.loads(out) for out, _ in outputs]


def check_one_task_per_key(results, function):
    rows = list(TaskQueue.objects.filter(function=function).values_list("id", "unique_key"))
    by_key = Counter(key for _, key in rows)
    assert len(by_key) == KEYS and set(by_key.values()) == {1}, (
        f"a key is held by more than one task, or none: {len(by_key)} keys, {by_key.most_common(3)}"
    )
    ids = {key.rsplit(":", 1)[1].split("@")[0]: pk for pk, key in rows}
    for key in ids:
        answers = [result[key] for result in results]
        # Every process got the one task's handle; exactly one of them stored it.
        assert {pk for pk, _ in answers} == {ids[key]}
        assert sorted(duplicate for _, duplicate in answers) == [False] + [True] * (PROCESSES - 1)


def test_concurrent_enqueue_stores_one_task_per_key(tmp_path):
    results = race("per_user_key", tmp_path)
    check_one_task_per_key(results, "tests.app.unique_tasks.per_user_key")


def test_concurrent_enqueue_with_workers_running_runs_each_key_once(tmp_path, worker_process):
    workers = [worker_process("--concurrency", "2") for _ in range(2)]
    wait_for(lambda: Worker.objects.count() == 2, timeout=START_TIMEOUT, message="both workers to start")
    results = race("once_a_year", tmp_path)
    check_one_task_per_key(results, "tests.app.unique_tasks.once_a_year")
    wait_for(
        lambda: TaskQueue.objects.filter(status=DONE).count() == KEYS,
        timeout=RUN_TIMEOUT,
        interval=0.2,
        message=f"{KEYS} tasks to finish",
    )
    for worker in workers:
        code, out = worker.stop()
        assert code == 0, out
    executed = Counter(records("k"))
    assert len(executed) == KEYS and set(executed.values()) == {1}, "a key ran more than once"


def test_a_worker_retrying_waiting_unique_tasks_meets_no_conflict(worker_process):
    """ "waiting" scope through a real worker's claims ahead, starts and retries.

    Each key's task fails three times; meanwhile the same keys are enqueued
    again and again.  A started task leaves the scope, so a second task per
    key may join it; never two that have not started.  The worker must not
    meet a unique violation in any transition (it would log it and stop).
    """
    from tests.app import unique_tasks

    keys = [f"w{i}" for i in range(20)]
    worker = worker_process("--concurrency", "2")
    name = "tests.app.unique_tasks.failing_once"

    def not_started_per_key():
        rows = TaskQueue.objects.filter(function=name, status__in=(1, 2), attempts=0)
        return Counter(rows.values_list("unique_key", flat=True))

    def settled():
        for key in keys:
            unique_tasks.failing_once(key)
        counts = not_started_per_key()
        assert not counts or max(counts.values()) == 1, counts
        # Until every key was retried and enqueued again once its first task had started.
        rows = Counter(TaskQueue.objects.filter(function=name).values_list("unique_key", flat=True))
        retried = TaskQueue.objects.filter(function=name, attempts__gte=2).count() >= len(keys)
        return retried and len(rows) == len(keys) and min(rows.values()) >= 2

    wait_for(settled, timeout=RUN_TIMEOUT, interval=0.05, message="retries of every key")
    wait_for(
        lambda: not TaskQueue.objects.filter(function=name, status__in=(1, 2)).exists(),
        timeout=RUN_TIMEOUT,
        interval=0.2,
        message="every task to fail for good",
    )
    code, out = worker.stop()
    assert code == 0, out
    for violation in ("IntegrityError", "UNIQUE constraint", "duplicate key", "Duplicate entry"):
        assert violation not in out, out
    per_key = Counter(TaskQueue.objects.filter(function=name).values_list("unique_key", flat=True))
    assert len(per_key) == len(keys) and min(per_key.values()) >= 2, per_key  # the scope freed on start
    assert set(TaskQueue.objects.filter(function=name).values_list("status", flat=True)) == {4}
