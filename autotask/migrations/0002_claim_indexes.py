"""Indexes for claiming, lease recovery and pruning, shaped per database vendor.

They live outside the model state because their shape differs by database
(partial indexes where the database has them); autotask.db decides.

The first operation upgrades a database of autotask 0.5 in place.  0.5 named
its only migration ``autotask.0001_initial`` too, so Django takes 0001 as
applied and starts here, with 0.5's ``autotask_taskqueue`` and without 1.0's
tables.  That operation sets the old table aside as ``autotask_taskqueue_v05``
and creates the tables 0001 defines; on a fresh database or one already at 1.0
it does nothing.
"""

import logging

from django.db import migrations

from autotask.db import get_ops

logger = logging.getLogger("autotask")

LEGACY_TABLE = "autotask_taskqueue_v05"
# Columns only autotask 0.5's task table had, and one it lacked.
LEGACY_COLUMNS = {"module", "arguments", "is_periodic", "cron_data"}
CURRENT_COLUMN = "queue"
LEGACY_STATUS = {1: "waiting", 2: "running", 3: "done", 4: "error"}


def _columns(connection, table):
    with connection.cursor() as cursor:
        return {column.name for column in connection.introspection.get_table_description(cursor, table)}


def _count(connection, table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        return cursor.fetchone()[0]


def upgrade_from_05(apps, schema_editor):
    """Set 0.5's task table aside and create 1.0's tables, if this database has 0.5's."""
    connection = schema_editor.connection
    model = apps.get_model("autotask", "TaskQueue")
    table = model._meta.db_table
    tables = set(connection.introspection.table_names())
    if table not in tables:
        return  # a fresh database: 0001 has not created it here, nothing to upgrade
    columns = _columns(connection, table)
    if CURRENT_COLUMN in columns:
        return  # already autotask 1.0
    if not LEGACY_COLUMNS <= columns:
        raise RuntimeError(
            f"{table} has neither autotask 1.0's columns nor autotask 0.5's "
            f"({', '.join(sorted(columns))}); migrate cannot tell what it holds. "
            "Rename or drop that table, then run migrate again."
        )
    quote = schema_editor.quote_name
    rows = _count(connection, table)
    if LEGACY_TABLE in tables:
        # An earlier run copied the rows but stopped before dropping the old
        # table (MySQL runs each DDL statement on its own).
        if _count(connection, LEGACY_TABLE) != rows:
            raise RuntimeError(
                f"Both {table} (autotask 0.5) and {LEGACY_TABLE} exist with different rows; "
                f"keep the rows you need in {LEGACY_TABLE}, drop {table}, then run migrate again."
            )
    else:
        # A copy rather than a rename: the old table's primary key constraint
        # and id sequence keep the old table's name, and the new table needs it.
        schema_editor.execute(f"CREATE TABLE {quote(LEGACY_TABLE)} AS SELECT * FROM {quote(table)}")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status, COUNT(*) FROM {quote(LEGACY_TABLE)} GROUP BY status ORDER BY status")
        by_status = dict(cursor.fetchall())
    schema_editor.execute(schema_editor.sql_delete_table % {"table": quote(table)})
    for name in ("Schedule", "Worker", "TaskQueue"):  # what 0001 creates, in its order
        created = apps.get_model("autotask", name)
        if created._meta.db_table == table or created._meta.db_table not in tables:
            schema_editor.create_model(created)
    logger.warning(
        "autotask: upgraded a database of autotask 0.5. Its task table is kept as %s with "
        "%d row(s) (%s), of which %d were waiting to run; autotask 1.0 does not run them "
        "(their arguments are pickled 0.5 payloads): enqueue again what still needs to run, "
        "then drop %s. The tables of autotask 1.0 were created.",
        LEGACY_TABLE,
        rows,
        ", ".join(f"{LEGACY_STATUS.get(status, status)}: {n}" for status, n in sorted(by_status.items())) or "none",
        by_status.get(1, 0),
        LEGACY_TABLE,
    )


def create(apps, schema_editor):
    get_ops(schema_editor.connection.alias).create_indexes(schema_editor)


def drop(apps, schema_editor):
    get_ops(schema_editor.connection.alias).drop_indexes(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("autotask", "0001_initial")]
    # atomic=False: MySQL cannot run DDL inside a transaction.  Databases with
    # transactional DDL still run the whole migration in one.
    operations = [
        migrations.RunPython(upgrade_from_05, migrations.RunPython.noop, atomic=False, elidable=False),
        migrations.RunPython(create, drop, atomic=False, elidable=False),
    ]
