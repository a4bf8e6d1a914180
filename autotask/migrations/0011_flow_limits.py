"""Concurrency and rate limits: the key and limit of a task row, HELD, flow keys and the rate ledger.

The new columns are NULLable without a default (no table rebuild on SQLite,
which would drop the raw partial indexes of 0002 and 0004).  The indexes of
the admissions are shaped per database (autotask.db.flow): partial where the
database has them, so that plain tasks never enter them.
"""

from django.db import migrations, models

from autotask.db import get_ops
from autotask.db import flow


def create(apps, schema_editor):
    flow.create_indexes(get_ops(schema_editor.connection.alias), schema_editor)


def drop(apps, schema_editor):
    flow.drop_indexes(get_ops(schema_editor.connection.alias), schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("autotask", "0010_stop_requests"),
    ]

    operations = [
        migrations.CreateModel(
            name="FlowKey",
            fields=[
                (
                    "key",
                    models.CharField(max_length=300, primary_key=True, serialize=False, verbose_name="key"),
                ),
                ("limit", models.PositiveIntegerField(blank=True, null=True, verbose_name="limit")),
                ("window", models.FloatField(blank=True, null=True, verbose_name="window (seconds)")),
            ],
            options={
                "verbose_name": "Flow key",
                "verbose_name_plural": "Flow keys",
            },
        ),
        migrations.AddField(
            model_name="taskqueue",
            name="concurrency_key",
            field=models.CharField(blank=True, max_length=255, null=True, verbose_name="concurrency key"),
        ),
        migrations.AddField(
            model_name="taskqueue",
            name="concurrency_limit",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="At most this many tasks with the key run at once.",
                null=True,
                verbose_name="concurrency limit",
            ),
        ),
        migrations.AlterField(
            model_name="schedule",
            name="last_status",
            field=models.SmallIntegerField(
                blank=True,
                choices=[
                    (1, "Waiting"),
                    (2, "Running"),
                    (3, "Done"),
                    (4, "Error"),
                    (5, "Cancelled"),
                    (6, "Waiting for a slot"),
                ],
                null=True,
                verbose_name="last status",
            ),
        ),
        migrations.AlterField(
            model_name="taskqueue",
            name="status",
            field=models.SmallIntegerField(
                choices=[
                    (1, "Waiting"),
                    (2, "Running"),
                    (3, "Done"),
                    (4, "Error"),
                    (5, "Cancelled"),
                    (6, "Waiting for a slot"),
                ],
                default=1,
                verbose_name="status",
            ),
        ),
        migrations.CreateModel(
            name="RateStart",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=255, verbose_name="rate key")),
                ("started_at", models.DateTimeField(verbose_name="started at")),
            ],
            options={
                "verbose_name": "Rate-limited start",
                "verbose_name_plural": "Rate-limited starts",
                "indexes": [models.Index(fields=["key", "started_at"], name="autotask_rate_start_idx")],
            },
        ),
        # The status choices name HELD now (no column change).
        migrations.AlterField(
            model_name="workflow",
            name="status",
            field=models.SmallIntegerField(
                choices=[
                    (1, "Waiting"),
                    (2, "Running"),
                    (3, "Done"),
                    (4, "Error"),
                    (5, "Cancelled"),
                    (6, "Waiting for a slot"),
                ],
                default=2,
                verbose_name="status",
            ),
        ),
        # atomic=False: MySQL cannot run DDL inside a transaction.
        migrations.RunPython(create, drop, atomic=False, elidable=False),
    ]
