"""Fixtures shared by the whole suite: real databases, real worker processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout=15.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class WorkerProcess:
    """A real ``manage.py run_autotask`` process against the test database."""

    def __init__(self, args=(), env=None):
        from django.db import connection

        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "AUTOTASK_TEST_DB_NAME": connection.settings_dict["NAME"],
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.args = list(args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "run_autotask", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=30):
        """Wait for the process to exit; return (exit code, output)."""
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait(timeout)


@pytest.fixture
def worker_process(transactional_db):
    """Start workers with ``worker_process(*args)``; every one is stopped at teardown."""
    started = []

    def start(*args, env=None):
        worker = WorkerProcess(args, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def records(key_prefix=""):
    """Return the keys executions of tests.app.tasks.record wrote, in insertion order."""
    from tests.app.models import Record

    return list(
        Record.objects.filter(key__startswith=key_prefix).order_by("id").values_list("key", flat=True)
    )


@pytest.fixture
def isolated_schedules():
    """Declare periodic tasks for one test: those other modules declared are out of the tick meanwhile."""
    from autotask.definitions import registry
    from autotask.definitions import schedules as scheduler

    saved = dict(scheduler._schedules), dict(registry._registry), set(scheduler._synced)
    scheduler._schedules.clear()
    scheduler._synced.clear()
    yield
    for target, value in zip(
        (scheduler._schedules, registry._registry, scheduler._synced), saved, strict=True
    ):
        target.clear()
        target.update(value)


@pytest.fixture
def declared_schedules(isolated_schedules):
    """tests.app.scheduled's one-second schedules, declared in this process for one test.

    Declared afresh (a reload: the module may have been imported before, its
    schedules since put away by isolated_schedules), and out of the tick once
    the test ends, so no later test in this process runs them.
    """
    import importlib

    import tests.app.scheduled

    return importlib.reload(tests.app.scheduled)
