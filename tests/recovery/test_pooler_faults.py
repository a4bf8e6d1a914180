"""Faults of the pooler itself (AUTOTASK_TEST_DB=pgbouncer): no task lost, the workers carry on.

PgBouncer's admin console drops every connection to the test database at
once, the workers' claim connections and the test's own included, while two
workers run a few hundred tasks; the workers' direct LISTEN connections
survive it.

A task's own write can be committed on the server while the pooler drops
its connection before the reply: the task sees a lost connection, fails, and
its retry writes again.  Such an attempt was cut off by the fault as much as
one recovered from a lost worker, and is counted so.
"""

import collections
import os

import pytest
from django.conf import settings
from django.db import connection, connections

from autotask.models import TaskQueue
from tests.app import tasks
from tests.conftest import records

from .conftest import WORKER_LOST, alive, listen_sessions, wait_all_done, wait_some_done

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("AUTOTASK_TEST_DB") != "pgbouncer", reason="through PgBouncer"),
]
COUNT = 300
# What a task's attempt reports when the pooler dropped its connection mid-statement.
DROPPED = ("database removed", "server closed the connection", "consuming input failed")


def cut_off(entry):
    """True for an attempt a fault cut off: recovered from a lost worker, or its connection dropped."""
    error = str(entry.get("error", ""))
    return entry.get("exception") == WORKER_LOST or any(text in error for text in DROPPED)


def check_outcome(prefix, handles):
    """Every task DONE, every key recorded; a key recorded again only for an attempt cut off."""
    wait_all_done(handles)
    keys = [f"{prefix}{i}" for i in range(len(handles))]
    counts = collections.Counter(records(prefix))
    assert not [k for k in keys if counts[k] == 0], "tasks lost"
    assert set(counts) <= set(keys), f"unexpected records: {set(counts) - set(keys)}"
    histories = dict(TaskQueue.objects.filter(pk__in=[h.pk for h in handles]).values_list("pk", "history"))
    for handle, key in zip(handles, keys, strict=True):
        cut = sum(1 for entry in histories[handle.pk] if cut_off(entry))
        assert counts[key] <= 1 + cut, f"{key} ran {counts[key]} times, {cut} attempts cut off"


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
