"""The connections a worker holds, directly and through PgBouncer in transaction mode.

On PostgreSQL (AUTOTASK_TEST_DB=postgresql) a worker holds its claim
connection and its LISTEN connection.  Through PgBouncer
(AUTOTASK_TEST_DB=pgbouncer: AUTOTASK_POOLER = "transaction",
AUTOTASK_LISTEN_DATABASE = "listen"), its claims, starts and finishes go
through the pooler as one client, and only its LISTEN connection reaches the
server directly: a worker that would otherwise look for tasks once a minute
still starts a new task on the notification.
"""

import os

import pytest
from django.conf import settings
from django.db import connection, connections

from autotask.models import TaskQueue
from autotask.tasks import DONE
from tests.app import tasks
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's connections"),
]
THROUGH_PGBOUNCER = os.environ.get("AUTOTASK_TEST_DB") == "pgbouncer"
# Without a notification, the worker would not look for new tasks for this long.
LONG_IDLE = {"AUTOTASK_TEST_IDLE_TIME": "120"}


def backends(worker):
    """The worker's server backends: [(query, state)], by its application_name.

    Asked on a connection to the server itself (with "listen"'s settings through the pooler).
    """
    source = connections["listen" if THROUGH_PGBOUNCER else "default"]
    raw = source.get_new_connection(source.get_connection_params())
    try:
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT query, state FROM pg_stat_activity WHERE application_name LIKE %s "
                "AND pid <> pg_backend_pid()",
                [f"autotask worker %:{worker.pid}:%"],
            )
            return cursor.fetchall()
    finally:
        raw.close()


def listening(worker):
    return [query for query, _ in backends(worker) if query.startswith("LISTEN")]


def pooler_clients(worker):
    """The worker's clients of PgBouncer (its admin console, SHOW CLIENTS)."""
    import psycopg

    config = settings.DATABASES["default"]
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,  # the console speaks the simple query protocol only
    ) as console:
        cursor = console.execute("SHOW CLIENTS")
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return [row for row in rows if f":{worker.pid}:" in (row["application_name"] or "")]


def test_a_worker_wakes_on_a_notification_and_holds_two_connections(worker_process):
    worker = worker_process("--concurrency", "4", env=LONG_IDLE)
    # The LISTEN connection opens as the worker starts to wait: from now on it sleeps.
    wait_for(lambda: listening(worker), timeout=30, message="the worker to LISTEN")
    handles = tasks.add.enqueue_many((i, i) for i in range(20))
    wait_for(
        lambda: TaskQueue.objects.filter(pk__in=[h.pk for h in handles], status=DONE).count() == 20,
        timeout=30,
        message="the tasks, started on the notification (the worker's poll is 120 s away)",
    )
    assert len(listening(worker)) == 1
    if THROUGH_PGBOUNCER:
        # Directly: only the LISTEN connection (the pooler's server sessions are not the worker's).
        direct = [
            query for query, state in backends(worker) if state == "idle" and query.startswith("LISTEN")
        ]
        assert len(direct) == 1
        # Through the pooler: one client, the claim/finish connection (tasks that use no database).
        assert len(pooler_clients(worker)) == 1
    else:
        # The claim/finish connection and the LISTEN connection; no other, with 4 task threads.
        assert len(backends(worker)) == 2, backends(worker)


@pytest.mark.skipif(not THROUGH_PGBOUNCER, reason="through PgBouncer")
def test_without_a_listen_connection_a_worker_behind_the_pooler_polls_and_says_so(worker_process):
    worker = worker_process(env={"AUTOTASK_TEST_NO_LISTEN_DATABASE": "1"})
    handle = tasks.add(2, 3)
    wait_for(lambda: handle.ready, timeout=30, message="the task, found by polling")
    assert handle.result == 5
    assert listening(worker) == []
    _, output = worker.stop()
    assert "cannot LISTEN through the pooler" in output
