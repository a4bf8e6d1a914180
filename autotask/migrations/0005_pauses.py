"""Pausing queues and schedules: the table of paused queues, a schedule's paused state."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("autotask", "0004_unique_tasks")]

    operations = [
        migrations.CreateModel(
            name="PausedQueue",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="The queue's name.", max_length=100, unique=True)),
                ("paused_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "paused_by",
                    models.CharField(blank=True, default="", help_text="Who paused it.", max_length=150),
                ),
            ],
            options={
                "verbose_name": "Paused queue",
                "verbose_name_plural": "Paused queues",
                "ordering": ["name"],
            },
        ),
        migrations.AddField(
            model_name="schedule",
            name="paused",
            field=models.BooleanField(default=False, help_text="Paused: no run is enqueued until resumed."),
        ),
        migrations.AddField(
            model_name="schedule",
            name="paused_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="schedule",
            name="paused_by",
            field=models.CharField(blank=True, default="", help_text="Who paused it.", max_length=150),
        ),
    ]
