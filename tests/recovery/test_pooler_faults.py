"""Faults of the pooler itself (AUTOTASK_TEST_DB=pgbouncer): no task lost, the workers carry on.

PgBouncer's admin console drops every connection to the test database at
once, the workers' claim connections and the test's own included, while two
workers run a few hundred tasks; the workers' direct LISTEN connections
survive it.
"""

import os

import pytest
from django.conf import settings
from django.db import connection, connections

from tests.app import tasks

from .conftest import alive, check_outcome, listen_sessions, wait_some_done

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("AUTOTASK_TEST_DB") != "pgbouncer", reason="through PgBouncer"),
]
COUNT = 300


def console(*commands):
    """Run ``commands`` on PgBouncer's admin console (the simple query protocol only)."""
    import psycopg

    config = settings.DATABASES["default"]
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    ) as admin:
        for command in commands:
            admin.execute(command)


def test_the_pooler_dropping_every_connection_mid_run(spawn):
    handles = tasks.record_retrying.enqueue_many((f"k{i}", 0.002) for i in range(COUNT))
    workers = [spawn.worker("--concurrency", "2") for _ in range(2)]
    wait_some_done(handles, 40)
    listening = listen_sessions()
    name = connection.settings_dict["NAME"]
    connections.close_all()
    # Every client and server connection of the test database, then new ones let in again.
    console(f'KILL "{name}"', f'RESUME "{name}"')
    check_outcome("k", handles)
    assert all(alive(worker.pid) for worker in workers)  # the same workers carried on
    assert any("reconnecting" in worker.output() for worker in workers)  # the fault reached them
    # The workers' LISTEN connections go to the server directly: the pooler's fault left them alone.
    assert listening <= listen_sessions()
