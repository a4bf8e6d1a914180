"""SQLite has no LISTEN: a worker still starts a task another process enqueued within moments."""

import pytest
from django.db import connection

from autotask.models import Worker
from tests.app import tasks
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_task_from_another_process_starts_long_before_the_idle_time(worker_process):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL wakes workers by NOTIFY; MariaDB polls every idle time")
    # Idle 30 s, and no periodic duty (heartbeat: a third of the 120 s lease) wakes it sooner.
    worker = worker_process("--idle-time", "30", env={"AUTOTASK_TEST_LEASE_SECONDS": "120"})
    assert wait_for(lambda: Worker.objects.exists(), message="the worker's heartbeat")
    first = tasks.add(1, 1)  # may or may not be claimed at start-up: either way the worker then idles
    assert first.wait(40), worker.stop()
    # This process is not the worker's: only the database can tell the worker.
    second = tasks.add(2, 2)
    assert wait_for(lambda: second.ready, timeout=10, message="pickup well within the 30 s idle time")
    assert second.result == 4
