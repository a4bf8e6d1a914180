"""Paused queues and schedules hold with several real worker processes, and across their restart."""

from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.utils import timezone

from autotask.maintenance import pauses, scheduling
from autotask.models import Schedule, TaskQueue, Worker
from autotask.task import DONE, WAITING
from tests.app import tasks
from tests.conftest import records, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The bar for its concurrency tests: processes per database.
WORKERS = {"postgresql": 6, "sqlite": 4, "mysql": 4}[connection.vendor]
HELD, FREE = 120, 120  # tasks per queue
SCHEDULES = {"AUTOTASK_TEST_SCHEDULES": "tests.app.scheduled"}
EVERY_SECOND = "tests.app.scheduled.every_second"
TICKING = "tests.app.scheduled.failing_every_second"  # shows the scheduler ticks meanwhile


def start_workers(worker_process, env=None):
    """Start WORKERS workers claiming three ways: every queue, a list of queues, the held queue alone."""
    ways = [(), ("--queues", "held,free"), ("--queues", "held")]
    started = [worker_process("--concurrency", "2", *ways[i % len(ways)], env=env) for i in range(WORKERS)]
    wait_for(lambda: Worker.objects.count() == WORKERS, timeout=60, message=f"{WORKERS} workers to start")
    return started


def stop(workers):
    for worker in workers:
        code, out = worker.stop()
        assert code == 0, out
    wait_for(lambda: not Worker.objects.exists(), timeout=30, message="the workers to deregister")


def enqueue(queue, prefix, count):
    return tasks.record.using(queue=queue).enqueue_many((f"{prefix}-{i}",) for i in range(count))


def done(prefix, count):
    wait_for(
        lambda: TaskQueue.objects.filter(status=DONE, args__contains=f'"{prefix}-').count() == count,
        timeout=120,
        interval=0.1,
        message=f"{count} {prefix} tasks to finish",
    )


def test_a_paused_queue_waits_while_others_run_and_across_a_restart(worker_process):
    assert pauses.pause_queue("held")
    workers = start_workers(worker_process)
    held = enqueue("held", "held", HELD)
    enqueue("free", "free", FREE)
    done("free", FREE)
    waiting = TaskQueue.objects.filter(pk__in=[h.pk for h in held], status=WAITING)
    assert waiting.count() == HELD, "a task of the paused queue was claimed"
    assert records("held") == []

    # Restarted workers (new processes, new sessions) read the pause from the database.
    stop(workers)
    workers = start_workers(worker_process)
    enqueue("free", "again", FREE)
    done("again", FREE)
    assert waiting.count() == HELD, "a task of the paused queue was claimed after a restart"
    assert records("held") == []

    assert pauses.resume_queue("held")
    done("held", HELD)
    stop(workers)
    executed = records("held")
    assert sorted(executed) == sorted(f"held-{i}" for i in range(HELD)), "each held task runs once"
    assert set(TaskQueue.objects.values_list("attempts", flat=True)) == {1}


def occurrences(name):
    return list(
        TaskQueue.objects.filter(function=name)
        .order_by("scheduled_at")
        .values_list("scheduled_at", flat=True)
    )


def test_a_paused_schedule_does_not_fire_across_a_restart_and_resumes_without_a_burst(
    worker_process, declared_schedules
):
    scheduling.sync()
    assert pauses.pause_schedule(EVERY_SECOND)
    workers = start_workers(worker_process, env=SCHEDULES)
    wait_for(lambda: len(occurrences(TICKING)) >= 3, timeout=30, message="the scheduler to tick")
    stop(workers)
    workers = start_workers(worker_process, env=SCHEDULES)
    ticked = len(occurrences(TICKING))
    wait_for(
        lambda: len(occurrences(TICKING)) >= ticked + 3, timeout=30, message="the scheduler to tick again"
    )
    assert occurrences(EVERY_SECOND) == [], "a paused schedule fired"
    paused_since = Schedule.objects.get(name=EVERY_SECOND).next_run_at

    resumed_at = timezone.now()
    assert pauses.resume_schedule(EVERY_SECOND)
    wait_for(lambda: len(occurrences(EVERY_SECOND)) >= 4, timeout=30, message="runs after the resume")
    stop(workers)
    runs = occurrences(EVERY_SECOND)
    # No burst: the first run is the next occurrence after the resume, not one missed while paused.
    assert runs[0] > resumed_at >= paused_since + timedelta(seconds=3)
    assert len(runs) == len(set(runs)), "an occurrence was enqueued twice"
    assert {(b - a).total_seconds() for a, b in pairwise(runs)} == {1.0}
