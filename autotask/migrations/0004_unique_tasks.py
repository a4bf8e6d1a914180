"""Unique tasks: the key and scope columns, and a unique index over the rows in scope.

The index is shaped per database (autotask.db): a partial unique index where
the database has them, a generated column under a unique index on MySQL and
MariaDB.
"""

from django.db import migrations, models

from autotask.db import get_ops


def create(apps, schema_editor):
    get_ops(schema_editor.connection.alias).create_unique_index(schema_editor)


def drop(apps, schema_editor):
    get_ops(schema_editor.connection.alias).drop_unique_index(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("autotask", "0003_schedule_runs_index")]
    operations = [
        migrations.AddField(
            model_name="taskqueue",
            name="unique_key",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddField(
            model_name="taskqueue",
            name="unique_scope",
            field=models.SmallIntegerField(
                blank=True, choices=[(1, "Active"), (2, "Waiting"), (3, "Window")], null=True
            ),
        ),
        # atomic=False: MySQL cannot run DDL inside a transaction.
        migrations.RunPython(create, drop, atomic=False, elidable=False),
    ]
