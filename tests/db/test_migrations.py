"""The schema the migrations leave, forwards and backwards, on the database this run uses."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import NewTask
from autotask.models import Schedule, TaskQueue

pytestmark = pytest.mark.django_db(transaction=True)
VENDOR = connection.vendor


def schedule_column():
    """Constraints and indexes on autotask_taskqueue.schedule_id: {name: introspected info}."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, TaskQueue._meta.db_table)
    return {name: info for name, info in found.items() if info["columns"] == ["schedule_id"]}


def assert_latest_schema():
    found = schedule_column()
    assert any(info["index"] for info in found.values()), found
    if VENDOR != "sqlite":  # SQLite keeps the constraint in the table's definition (NULL costs nothing)
        assert not any(info["foreign_key"] for info in found.values()), found
    if VENDOR != "mysql":  # MySQL has no partial index: it keeps the constraint's own
        assert "autotask_schedule_runs_idx" in found, found


def test_runs_of_schedules_have_an_index_and_no_constraint():
    assert_latest_schema()


def test_the_migration_goes_back_and_forth():
    call_command("migrate", "autotask", "0002", verbosity=0)
    try:
        found = schedule_column()
        assert "autotask_schedule_runs_idx" not in found, found
        assert any(info["index"] for info in found.values()), found
        if VENDOR != "sqlite":
            assert any(info["foreign_key"] for info in found.values()), found
    finally:
        call_command("migrate", "autotask", verbosity=0)
    assert_latest_schema()


def test_deleting_a_schedule_keeps_its_runs_without_it():
    now = timezone.now()
    schedule = Schedule.objects.create(name="tests.nightly", kind="cron", spec="0 3 * * *", next_run_at=now)
    row = NewTask(function="tests.app.tasks.echo", args=json.dumps("run"), created_at=now, scheduled_at=now)
    ids = get_ops().insert_calls(row, ['"a"', '"b"'])
    TaskQueue.objects.filter(pk__in=ids).update(schedule=schedule)
    schedule.delete()
    assert list(TaskQueue.objects.filter(pk__in=ids).values_list("schedule_id", flat=True)) == [None, None]


@pytest.mark.skipif(VENDOR == "mysql", reason="MySQL runs each DDL statement on its own")
def test_the_migration_writes_before_it_reads(monkeypatch):
    """SQLite refuses a write on a snapshot another commit made stale: workers commit all the time."""
    from autotask.db import schema

    seen = []
    introspect = schema._schedule_constraints

    def spy(*args):
        seen.append("(introspection)")
        return introspect(*args)

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    monkeypatch.setattr(schema, "_schedule_constraints", spy)
    call_command("migrate", "autotask", "0002", verbosity=0)
    try:
        with connection.execute_wrapper(record):
            call_command("migrate", "autotask", "0003", verbosity=0)
    finally:
        call_command("migrate", "autotask", verbosity=0)
    created = next(
        i for i, sql in enumerate(seen) if "CREATE INDEX" in sql and "autotask_schedule_runs_idx" in sql
    )
    assert created < seen.index("(introspection)"), seen
    assert_latest_schema()
