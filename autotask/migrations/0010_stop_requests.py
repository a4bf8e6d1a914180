"""A running task can be asked to stop: the time it was asked (NULL: never)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('autotask', '0009_workflows'),
    ]

    operations = [
        # NULLable, no default: SQLite adds the column without rebuilding the table
        # (a rebuild would drop the raw partial indexes of 0002 and 0004).
        migrations.AddField(
            model_name='taskqueue',
            name='stop_requested_at',
            field=models.DateTimeField(blank=True, help_text='Asked to stop while running.', null=True, verbose_name='stop requested at'),
        ),
    ]
