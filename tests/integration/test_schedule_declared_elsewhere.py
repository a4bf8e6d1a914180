"""Schedules declared in a process that is not a worker: stored there, run by the workers."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from django.db import connection

from autotask.models import Schedule
from tests.conftest import ROOT, records, wait_for
from tests.integration.test_schedule import assert_each_occurrence_ran_once

pytestmark = pytest.mark.django_db(transaction=True)

DECLARE = """
import django
django.setup()
import tests.app.script_scheduled
print("declared")
"""


def run_script(code, **env):
    """Run ``code`` in a fresh Python process set up like the test project; return the result."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AUTOTASK_TEST_DB_NAME": connection.settings_dict["NAME"],
        "AUTOTASK_TEST_WORKER_AUTOSTART": "0",  # no worker beside the script: only the test's workers
        "PYTHONPATH": str(ROOT),
        **env,
    }
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_declared_only_in_a_script_runs_once_per_occurrence_with_two_workers(worker_process):
    workers = [worker_process() for _ in range(2)]
    done = run_script(DECLARE)
    assert done.returncode == 0, done.stderr
    assert "declared" in done.stdout
    name = "tests.app.script_scheduled.every_second"
    assert Schedule.objects.filter(name=name, missing=False).exists(), "stored before the script exited"
    # Due at once (start_now) but found by a worker up to 5 s later: that one runs once, late.
    assert_each_occurrence_ran_once(workers, name, "script_every_second", 5, first_late=True)
    assert not Schedule.objects.get(name=name).missing


def test_declared_only_in_a_module_a_view_imports_runs_after_the_first_request(worker_process, client):
    worker_process()
    name = "tests.app.view_scheduled.every_second"
    assert not Schedule.objects.filter(name=name).exists()
    assert client.get("/declare-schedule/").status_code == 200
    assert Schedule.objects.filter(name=name, missing=False).exists(), "stored by the end of the request"
    wait_for(lambda: records("view_every_second"), timeout=30, message="a run of the view's schedule")


def test_a_schedule_the_workers_cannot_import_is_marked_missing_with_the_reason(worker_process):
    done = run_script(
        DECLARE.replace(
            "import tests.app.script_scheduled",
            "import sys, types\n"
            "from autotask.tasks import periodic_task\n"
            "module = types.ModuleType('only_in_the_script')\n"
            "sys.modules['only_in_the_script'] = module\n"
            "def job(): pass\n"
            "job.__module__ = 'only_in_the_script'\n"
            "periodic_task(seconds=1)(job)",
        )
    )
    assert done.returncode == 0, done.stderr
    assert Schedule.objects.filter(name="only_in_the_script.job", missing=False).exists()
    worker_process()
    schedule = wait_for(lambda: Schedule.objects.filter(name="only_in_the_script.job", missing=True).first())
    assert "only_in_the_script" in schedule.last_error and "this schedule has stopped" in schedule.last_error


def test_a_declaration_before_migrate_is_stored_at_exit_and_migrate_is_unharmed(tmp_path):
    path = tmp_path / "fresh.sqlite3"
    done = run_script(
        DECLARE + "from django.core.management import call_command\ncall_command('migrate', verbosity=0)\n",
        AUTOTASK_TEST_DB="sqlite",
        AUTOTASK_TEST_DB_NAME=str(path),
    )
    assert done.returncode == 0, done.stderr
    assert "could not store the schedules declared in this process" in done.stderr
    assert "no such table" in done.stderr and "migrate" in done.stderr
    assert "never stored" not in done.stderr
    with sqlite3.connect(path) as db:
        names = [name for (name,) in db.execute("SELECT name FROM autotask_schedule")]
    assert names == ["tests.app.script_scheduled.every_second"]


def test_a_script_whose_database_is_down_runs_on_and_says_the_schedule_was_never_stored(tmp_path):
    done = run_script(
        DECLARE,
        # A database that cannot be opened, with the driver every env has.
        AUTOTASK_TEST_DB="sqlite",
        AUTOTASK_TEST_DB_NAME=str(tmp_path / "no-such-folder" / "db.sqlite3"),
    )
    assert done.returncode == 0, done.stderr
    assert "declared" in done.stdout
    assert "could not store the schedules declared in this process" in done.stderr
    assert "the schedules declared in this process were never stored" in done.stderr
    assert "tests.app.script_scheduled.every_second" in done.stderr


def test_declared_in_manage_py_shell_is_stored():
    done = subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", "import tests.app.script_scheduled"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "AUTOTASK_TEST_DB_NAME": connection.settings_dict["NAME"],
            "PYTHONPATH": str(ROOT),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert Schedule.objects.filter(name="tests.app.script_scheduled.every_second").exists()


# -- when the declaring process may write ------------------------------------------


@pytest.fixture
def declared():
    """Declare a schedule in this process as a decorator would, without storing it; undo it after."""
    from autotask.definitions import schedules as scheduler
    from autotask.definitions.schedules import ScheduleSpec

    spec = ScheduleSpec("tests.app.script_scheduled.every_second", "periodic", seconds=60)
    saved = dict(scheduler._schedules), set(scheduler._unstored)
    scheduler.add(spec)  # under pytest, nothing is stored at declaration time
    assert not Schedule.objects.filter(name=spec.name).exists()
    yield spec.name
    scheduler._schedules.clear()
    scheduler._schedules.update(saved[0])
    scheduler._unstored.clear()
    scheduler._unstored.update(saved[1])


def test_not_stored_inside_a_transaction_but_after_it(declared):
    from django.db import transaction

    from autotask.supervisor import schedules as scheduler

    with transaction.atomic():
        assert scheduler.store_declared(serving=True) is False
    assert not Schedule.objects.filter(name=declared).exists()
    assert scheduler.store_declared(serving=True) is True
    assert Schedule.objects.filter(name=declared).exists()


def test_not_stored_from_a_thread_running_an_event_loop(declared):
    import asyncio

    from autotask.supervisor import schedules as scheduler

    async def declare():
        return scheduler.store_declared(serving=True)

    assert asyncio.run(declare()) is False
    assert not Schedule.objects.filter(name=declared).exists()
    assert scheduler.store_declared(serving=True) is True
