"""PostgreSQL's enqueue statement is prepared only where the project allows prepared statements.

Django turns psycopg's prepared statements off by default (a pooler in
transaction mode breaks them); ``"OPTIONS": {"prepare_threshold": N}`` turns
them back on, and then the one-row INSERT is prepared like any other.
"""

import pytest
from django.db import connection, connections, transaction

from autotask.models import TaskQueue
from tests.app.tasks import echo

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="postgresql only"),
    pytest.mark.django_db(transaction=True),
]
ALIAS = "prepared"
COMPARED = ["function", "kind", "queue", "priority", "status", "args", "ttl", "max_attempts", "options"]


def prepared_inserts(conn):
    """The INSERT statements prepared in ``conn``'s session."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement ILIKE %s",
            ["INSERT INTO%autotask_taskqueue%"],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def preparing():
    """A second connection to the test database, with ``prepare_threshold`` set in its OPTIONS."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        pytest.skip("psycopg 2 has no prepare_threshold")
    default = connections["default"]
    settings = default.settings_dict
    wrapper = type(default)(
        {**settings, "OPTIONS": {**settings["OPTIONS"], "prepare_threshold": 1}}, alias=ALIAS
    )
    connections[ALIAS] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        del connections[ALIAS]


def stored(pks):
    rows = TaskQueue.objects.in_bulk(pks)
    return [{name: getattr(rows[pk], name) for name in COMPARED} for pk in pks]


def calls(task):
    """Enqueue a handful of different calls through ``task``; their primary keys."""
    return [
        task(1, "two", three=[3]).pk,
        task.using(priority=7, queue="other", ttl=12.5)().pk,
        task.using(delay=60, retries=2)({"nested": {"k": "v"}}).pk,
        task("x" * 10_000).pk,
        task().pk,
    ]


def test_django_default_prepares_nothing():
    # Pooler safety: with Django's defaults the enqueue never leaves a
    # prepared statement in the session, however often it runs.
    for _ in range(10):
        echo("again")
    assert TaskQueue.objects.count() == 10
    assert prepared_inserts(connection) == []


def test_prepare_threshold_prepares_the_insert_and_stores_the_same_rows(preparing):
    assert prepared_inserts(preparing) == []
    theirs = calls(echo.using(database=ALIAS))
    ours = calls(echo)
    assert stored(theirs) == stored(ours)
    assert len(prepared_inserts(preparing)) >= 1
    assert prepared_inserts(connection) == []


def test_prepared_insert_follows_the_transaction(preparing):
    task = echo.using(database=ALIAS)
    for _ in range(3):
        task("warm")
    assert prepared_inserts(preparing)
    with pytest.raises(RuntimeError), transaction.atomic(using=ALIAS):
        task("rolled back")
        raise RuntimeError("roll back")
    with transaction.atomic(using=ALIAS):
        kept = task("kept").pk
    assert not TaskQueue.objects.filter(args__contains="rolled back").exists()
    assert TaskQueue.objects.filter(pk=kept).exists()
    assert TaskQueue.objects.count() == 4
