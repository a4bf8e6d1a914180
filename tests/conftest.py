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


# -- AUTOTASK_TEST_DB=pgbouncer: the test database is made and dropped directly ----
# Through PgBouncer, CREATE DATABASE would run on a pooled server session, and
# DROP DATABASE fails while the pooler keeps idle sessions to it.  So the
# task database's entry points at the server (the "listen" entry's address)
# while pytest-django creates it, at the pooler while the tests run, and at the
# server again to drop it, once the pooler's sessions to it are ended.


def _through_pgbouncer():
    from django.conf import settings

    return "listen" in settings.DATABASES and getattr(settings, "AUTOTASK_POOLER", None) == "transaction"


def _point(alias, at):
    from django.db import connections

    connection = connections[alias]
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = at


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """The task database's entry at the server itself while pytest-django creates its test database."""
    if not _through_pgbouncer():
        return
    from django.db import connections

    default = connections["default"].settings_dict
    _POOLER_ADDRESS.extend([default["HOST"], default["PORT"]])
    listen = connections["listen"].settings_dict
    _point("default", (listen["HOST"], listen["PORT"]))


_POOLER_ADDRESS = []  # (HOST, PORT) of the pooler while the test database is made directly


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Then through the pooler (the LISTEN entry on the same test database), and back to drop it."""
    if not _POOLER_ADDRESS:
        yield
        return
    from django.db import connections

    direct = (connections["default"].settings_dict["HOST"], connections["default"].settings_dict["PORT"])
    connections["listen"].settings_dict["NAME"] = connections["default"].settings_dict["NAME"]
    _point("default", tuple(_POOLER_ADDRESS))
    yield
    _point("default", direct)
    with django_db_blocker.unblock(), connections["listen"].cursor() as cursor:
        # The pooler's idle server sessions on the test database would keep it from being dropped.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connections["listen"].close()


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
