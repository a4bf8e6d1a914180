"""Runs of schedules: no foreign key constraint in the database, a partial index.

A foreign key constraint fires a trigger for every inserted task, scheduled
run or not, and the index held an entry for every task.  The ORM still sets a
deleted schedule's runs to NULL.  The index holds scheduled runs only, where
the database has partial indexes; MySQL and MariaDB keep the index their
constraint came with.
"""

import django.db.models.deletion
from django.db import migrations, models

from autotask.db import schema

INDEX = "autotask_schedule_runs_idx"


def forwards(apps, schema_editor):
    table = apps.get_model("autotask", "TaskQueue")._meta.db_table
    schema.schedule_runs_forwards(schema_editor, table, INDEX)


def backwards(apps, schema_editor):
    table = apps.get_model("autotask", "TaskQueue")._meta.db_table
    target = apps.get_model("autotask", "Schedule")._meta.db_table
    schema.schedule_runs_backwards(schema_editor, table, target, INDEX)


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
