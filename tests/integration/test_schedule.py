"""Periodic and cron tasks with real worker processes: exactly once per occurrence."""

import os
import subprocess
import sys
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from autotask.models import Schedule, TaskQueue
from autotask.task import DONE, ERROR
from tests.conftest import ROOT, records, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SCHEDULES = {"AUTOTASK_TEST_SCHEDULES": "tests.app.scheduled"}
SLOW = os.environ.get("AUTOTASK_TEST_SLOW") == "1"


def runs(name):
    return list(
        TaskQueue.objects.filter(function=name).order_by("scheduled_at").values_list("scheduled_at", "status")
    )


def assert_consecutive(occurrences, seconds):
    gaps = {(b - a).total_seconds() for a, b in pairwise(occurrences)}
    assert gaps == {seconds}, f"occurrences not {seconds}s apart: {occurrences}"


def assert_each_occurrence_ran_once(workers, name, key, count, first_late=False):
    """Wait for ``count`` runs of the one-second schedule ``name``, stop ``workers``, check them.

    ``first_late``: the first occurrence was due before any worker knew the
    schedule, so it ran once when one found it, like a missed occurrence.
    """
    wait_for(lambda: len(runs(name)) >= count, timeout=40, message=f"{count} occurrences")
    for worker in workers:
        worker.stop()
    occurrences = [at for at, _ in runs(name)]
    assert len(occurrences) == len(set(occurrences)), "an occurrence was enqueued twice"
    assert_consecutive(occurrences[1:] if first_late else occurrences, 1.0)
    finished = TaskQueue.objects.filter(function=name, status=DONE).count()
    assert records(key).count(key) == finished
    assert Schedule.objects.filter(name=name).count() == 1


def test_four_workers_run_each_periodic_occurrence_once(worker_process):
    workers = [worker_process(env=SCHEDULES) for _ in range(4)]
    assert_each_occurrence_ran_once(workers, "tests.app.scheduled.every_second", "every_second", 10)


def test_failing_periodic_task_keeps_its_schedule(worker_process):
    worker_process(env=SCHEDULES)
    name = "tests.app.scheduled.failing_every_second"
    wait_for(lambda: TaskQueue.objects.filter(function=name, status=ERROR).count() >= 3, timeout=30)
    schedule = Schedule.objects.get(name=name)
    assert schedule.last_status == ERROR
    assert schedule.last_error == "periodic failure"
    assert schedule.next_run_at > timezone.now() - timedelta(seconds=2)


def test_catch_up_after_outage_runs_once(worker_process):
    name = "tests.app.scheduled.every_second"
    worker = worker_process(env=SCHEDULES)
    wait_for(lambda: runs(name), message="the schedule to exist and run")
    worker.stop()
    # A 30 s outage: the schedule's next occurrence is 30 s in the past.
    missed = timezone.now() - timedelta(seconds=30)
    Schedule.objects.filter(name=name).update(next_run_at=missed)
    TaskQueue.objects.filter(function=name).delete()
    worker = worker_process(env=SCHEDULES)
    wait_for(lambda: len(runs(name)) >= 3, timeout=20)
    worker.stop()
    occurrences = [at for at, _ in runs(name)]
    assert occurrences[0] == missed, "the missed occurrence runs once"
    assert occurrences[1] > timezone.now() - timedelta(seconds=20), "no burst of missed runs"
    assert_consecutive(occurrences[1:], 1.0)


def test_schedule_of_a_vanished_function_is_marked_and_stops(worker_process):
    Schedule.objects.create(
        name="tests.app.scheduled.gone", kind="periodic", spec="1", next_run_at=timezone.now()
    )
    worker_process(env=SCHEDULES)
    schedule = wait_for(
        lambda: Schedule.objects.filter(name="tests.app.scheduled.gone", missing=True).first()
    )
    assert "gone from the code" in schedule.last_error
    assert not TaskQueue.objects.filter(function="tests.app.scheduled.gone").exists()


def test_schedule_row_survives_worker_exit(worker_process):
    worker = worker_process(env=SCHEDULES)
    wait_for(lambda: Schedule.objects.filter(name="tests.app.scheduled.every_second").exists())
    worker.stop()
    assert Schedule.objects.filter(name="tests.app.scheduled.every_second", missing=False).exists()


def test_migrate_on_a_fresh_database_with_schedules_declared(tmp_path):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("a fresh SQLite file stands for every fresh database here")
    env = {
        **os.environ,
        **SCHEDULES,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AUTOTASK_TEST_DB": "sqlite",
        "AUTOTASK_TEST_DB_NAME": str(tmp_path / "fresh.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not SLOW, reason="crosses three minute boundaries; set AUTOTASK_TEST_SLOW=1")
def test_four_workers_run_each_cron_occurrence_once(worker_process):
    env = {"AUTOTASK_TEST_SCHEDULES": "tests.app.scheduled_cron"}
    for _ in range(4):
        worker_process(env=env)
    name = "tests.app.scheduled_cron.every_minute"
    wait_for(lambda: TaskQueue.objects.filter(function=name, status=DONE).count() >= 3, timeout=200)
    occurrences = [at for at, _ in runs(name)]
    assert len(occurrences) == len(set(occurrences))
    assert all(at.second == 0 and at.microsecond == 0 for at in occurrences)
    assert_consecutive(occurrences[:3], 60.0)
    assert records("every_minute").count("every_minute") == len(occurrences)


def _tick_at(when):
    from autotask.maintenance import scheduling

    return scheduling.tick(now=when)


@pytest.mark.parametrize("use_tz", [True, False])
def test_tick_enqueues_each_occurrence_once_in_process(use_tz, settings, declared_schedules):
    settings.USE_TZ = use_tz
    settings.TIME_ZONE = "Europe/Berlin"
    name = "tests.app.scheduled.every_second"
    start = timezone.now()
    _tick_at(start)  # start_now: the first occurrence is due at once
    _tick_at(start)  # a second process at the same instant finds nothing to do
    assert len(runs(name)) == 1
    schedule = Schedule.objects.get(name=name)
    assert timezone.is_aware(schedule.next_run_at) is use_tz
    _tick_at(start + timedelta(seconds=1.5))
    _tick_at(start + timedelta(seconds=1.6))
    occurrences = [at for at, _ in runs(name)]
    assert len(occurrences) == 2
    assert (occurrences[1] - occurrences[0]).total_seconds() == 1.0
