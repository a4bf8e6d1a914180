"""Runs of schedules: no foreign key constraint in the database, a partial index.

A foreign key constraint fires a trigger for every inserted task, scheduled
run or not, and the index held an entry for every task.  The ORM still sets a
deleted schedule's runs to NULL.  The index holds scheduled runs only, where
the database has partial indexes; MySQL and MariaDB keep the index their
constraint came with.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "autotask_schedule_runs_idx"


def _schedule_constraints(schema_editor, table):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: info
        for name, info in constraints.items()
        if info["columns"] == ["schedule_id"] and not info["primary_key"] and not info["unique"]
    }


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    table = apps.get_model("autotask", "TaskQueue")._meta.db_table
    quote = schema_editor.quote_name
    if connection.vendor != "mysql":  # MySQL has no partial index: it keeps the constraint's own
        # A write first.  On SQLite it takes the write lock, so no worker can
        # commit between the reads below and the writes after them: SQLite
        # refuses a write on a snapshot that another commit has made stale
        # ("database is locked", at once).
        schema_editor.execute(
            f"CREATE INDEX {quote(INDEX)} ON {quote(table)} (schedule_id) WHERE schedule_id IS NOT NULL"
        )
    found = _schedule_constraints(schema_editor, table)
    for name, info in found.items():
        if info["foreign_key"] and connection.vendor != "sqlite":  # SQLite cannot drop one (NULL is free)
            schema_editor.execute(schema_editor.sql_delete_fk % {"table": quote(table), "name": quote(name)})
        elif info["index"] and not info["foreign_key"] and name != INDEX and connection.vendor != "mysql":
            schema_editor.execute(schema_editor.sql_delete_index % {"table": quote(table), "name": quote(name)})


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    model = apps.get_model("autotask", "TaskQueue")
    table, quote = model._meta.db_table, schema_editor.quote_name
    if connection.vendor != "mysql":
        schema_editor.execute(schema_editor.sql_delete_index % {"table": quote(table), "name": quote(INDEX)})
        schema_editor.execute(f"CREATE INDEX {quote(table + '_schedule_id')} ON {quote(table)} (schedule_id)")
    if connection.vendor != "sqlite":
        target = apps.get_model("autotask", "Schedule")._meta.db_table
        schema_editor.execute(
            schema_editor.sql_create_fk
            % {
                "table": quote(table),
                "name": quote(table + "_schedule_id_fk"),
                "column": "schedule_id",
                "to_table": quote(target),
                "to_column": "id",
                "on_delete_db": "",
                "deferrable": connection.ops.deferrable_sql(),
            }
        )


class Migration(migrations.Migration):
    dependencies = [("autotask", "0002_claim_indexes")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="taskqueue",
                    name="schedule",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="runs",
                        to="autotask.schedule",
                    ),
                ),
            ],
            # atomic=False: MySQL cannot run DDL inside a transaction.
            database_operations=[migrations.RunPython(forwards, backwards, atomic=False, elidable=False)],
        )
    ]
