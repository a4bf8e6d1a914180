"""Indexes for claiming, lease recovery and pruning, shaped per database vendor.

They live outside the model state because their shape differs by database
(partial indexes where the database has them); autotask.db decides.
"""

from django.db import migrations

from autotask.db import get_ops


def create(apps, schema_editor):
    get_ops(schema_editor.connection.alias).create_indexes(schema_editor)


def drop(apps, schema_editor):
    get_ops(schema_editor.connection.alias).drop_indexes(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("autotask", "0001_initial")]
    # atomic=False: MySQL cannot run DDL inside a transaction.  Databases with
    # transactional DDL still run the whole migration in one.
    operations = [migrations.RunPython(create, drop, atomic=False, elidable=False)]
