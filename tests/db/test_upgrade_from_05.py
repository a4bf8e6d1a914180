"""`manage.py migrate` upgrades a database of autotask 0.5 in place, on the database this run uses.

autotask 0.5 named its only migration autotask.0001_initial too, with another
autotask_taskqueue.  The table below is the one 0.5's migration created
(Django 1.9's column types for each vendor).
"""

import logging
import pickle
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from autotask.models import TaskQueue
from autotask.tasks import DONE, WAITING
from tests.app import tasks
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
VENDOR = connection.vendor
LEGACY = "autotask_taskqueue_v05"

# autotask 0.5.4, autotask/migrations/0001_initial.py, as Django created it.
COLUMNS_05 = {
    "sqlite": """
        "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "scheduled" datetime NOT NULL,
        "module" varchar(256) NOT NULL, "function" varchar(256) NOT NULL, "arguments" BLOB NOT NULL,
        "is_periodic" bool NOT NULL, "timedelta" bigint NULL, "cron_data" BLOB NOT NULL,
        "status" integer NOT NULL, "retries" integer NOT NULL, "result" BLOB NOT NULL,
        "ttl" bigint NULL, "expire" datetime NULL, "error_message" text NOT NULL""",
    "postgresql": """
        "id" serial NOT NULL PRIMARY KEY, "scheduled" timestamp with time zone NOT NULL,
        "module" varchar(256) NOT NULL, "function" varchar(256) NOT NULL, "arguments" bytea NOT NULL,
        "is_periodic" boolean NOT NULL, "timedelta" interval NULL, "cron_data" bytea NOT NULL,
        "status" integer NOT NULL, "retries" integer NOT NULL, "result" bytea NOT NULL,
        "ttl" interval NULL, "expire" timestamp with time zone NULL, "error_message" text NOT NULL""",
    "mysql": """
        `id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `scheduled` datetime(6) NOT NULL,
        `module` varchar(256) NOT NULL, `function` varchar(256) NOT NULL, `arguments` longblob NOT NULL,
        `is_periodic` bool NOT NULL, `timedelta` bigint NULL, `cron_data` longblob NOT NULL,
        `status` integer NOT NULL, `retries` integer NOT NULL, `result` longblob NOT NULL,
        `ttl` bigint NULL, `expire` datetime(6) NULL, `error_message` longtext NOT NULL""",
}
# (function, status): two waiting, one done, one failed.
ROWS_05 = [("send_mail", 1), ("send_mail", 1), ("build_report", 3), ("build_report", 4)]


def drop_legacy():
    with connection.cursor() as cursor:
        if LEGACY in connection.introspection.table_names(cursor):
            cursor.execute(f"DROP TABLE {connection.ops.quote_name(LEGACY)}")


@pytest.fixture
def database_05():
    """This test database as autotask 0.5 left it: its task table, 0001 recorded as applied."""
    call_command("migrate", "autotask", "zero", verbosity=0)
    now = timezone.now()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE autotask_taskqueue ({COLUMNS_05[VENDOR]})")
            for function, status in ROWS_05:
                cursor.execute(
                    "INSERT INTO autotask_taskqueue (scheduled, module, function, arguments, is_periodic,"
                    " cron_data, status, retries, result, error_message)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        connection.ops.adapt_datetimefield_value(now),
                        "shop.tasks",
                        function,
                        pickle.dumps(((1,), {"to": "a@example.com"}), protocol=2),
                        False,
                        b"",
                        status,
                        0,
                        b"",
                        "",
                    ],
                )
        MigrationRecorder(connection).record_applied("autotask", "0001_initial")
        yield
    finally:
        drop_legacy()
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
        if "autotask_schedule" not in tables:  # the upgrade failed: leave a 1.0 database
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE autotask_taskqueue")
            MigrationRecorder(connection).migration_qs.filter(app="autotask").delete()
        call_command("migrate", "autotask", verbosity=0)


def test_migrate_upgrades_a_database_of_05_and_keeps_its_rows(database_05, worker_process, caplog):
    with caplog.at_level(logging.WARNING, logger="autotask"):
        call_command("migrate", "autotask", verbosity=0)

    # The old rows, kept as they were.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT function, status, arguments FROM {LEGACY} ORDER BY id")
        kept = cursor.fetchall()
    assert [(function, status) for function, status, _ in kept] == ROWS_05
    assert pickle.loads(bytes(kept[0][2])) == ((1,), {"to": "a@example.com"})
    # Said loudly, with how many were waiting.
    [message] = [r.getMessage() for r in caplog.records if "autotask 0.5" in r.getMessage()]
    assert LEGACY in message and "4 row(s)" in message and "2 were waiting" in message, message
    assert "waiting: 2, done: 1, error: 1" in message, message

    # The 1.0 tables work: a real worker claims and runs a task.
    task = tasks.add(2, 3)
    worker = worker_process("--drain")
    assert worker.wait()[0] == 0
    assert wait_for(lambda: task.status == DONE) and task.result == 5
    call_command("migrate", "autotask", verbosity=0)  # the latest state, nothing left to apply


def test_migrate_on_a_database_of_10_changes_nothing(caplog):
    task = tasks.add.using(delay=3600)(1, 2)
    call_command("migrate", "autotask", "0001", verbosity=0)
    try:
        with caplog.at_level(logging.WARNING, logger="autotask"):
            call_command("migrate", "autotask", verbosity=0)
    finally:
        call_command("migrate", "autotask", verbosity=0)
    assert not any("autotask 0.5" in r.getMessage() for r in caplog.records)
    assert LEGACY not in connection.introspection.table_names()
    row = TaskQueue.objects.get(pk=task.pk)
    assert row.status == WAITING and row.scheduled_at > timezone.now() + timedelta(minutes=50)


def test_a_task_table_of_unknown_shape_stops_migrate_and_is_left_alone(database_05):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE autotask_taskqueue RENAME TO autotask_taskqueue_old")
        cursor.execute("CREATE TABLE autotask_taskqueue (id integer PRIMARY KEY, what varchar(10))")
        cursor.execute("INSERT INTO autotask_taskqueue (id, what) VALUES (1, 'mine')")
    try:
        with pytest.raises(RuntimeError, match=r"neither autotask 1\.0's columns nor autotask 0\.5's"):
            call_command("migrate", "autotask", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT what FROM autotask_taskqueue")
            assert list(cursor.fetchall()) == [("mine",)]
        assert LEGACY not in connection.introspection.table_names()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE autotask_taskqueue")
            cursor.execute("ALTER TABLE autotask_taskqueue_old RENAME TO autotask_taskqueue")


def test_an_upgrade_stopped_after_its_copy_completes_on_the_next_migrate(database_05, caplog):
    """MySQL runs each DDL statement on its own: a run can stop between the copy and the drop."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {LEGACY} AS SELECT * FROM autotask_taskqueue")
    with caplog.at_level(logging.WARNING, logger="autotask"):
        call_command("migrate", "autotask", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {LEGACY}")
        assert cursor.fetchone()[0] == len(ROWS_05)
    assert any("4 row(s)" in r.getMessage() for r in caplog.records)
    assert TaskQueue.objects.count() == 0


def test_a_set_aside_table_with_other_rows_stops_migrate_and_loses_nothing(database_05):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {LEGACY} AS SELECT * FROM autotask_taskqueue WHERE status = 1")
    with pytest.raises(RuntimeError, match=f"Both autotask_taskqueue .* and {LEGACY} exist"):
        call_command("migrate", "autotask", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM autotask_taskqueue")
        assert cursor.fetchone()[0] == len(ROWS_05)
        cursor.execute(f"SELECT COUNT(*) FROM {LEGACY}")
        assert cursor.fetchone()[0] == 2
