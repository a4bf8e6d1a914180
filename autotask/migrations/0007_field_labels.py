"""Field labels (verbose names) marked for translation: the admin shows them in the user's language; no schema change."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('autotask', '0006_task_stats'),
    ]

    operations = [
        migrations.AlterField(
            model_name='pausedqueue',
            name='name',
            field=models.CharField(help_text="The queue's name.", max_length=100, unique=True, verbose_name='name'),
        ),
        migrations.AlterField(
            model_name='pausedqueue',
            name='paused_at',
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name='paused at'),
        ),
        migrations.AlterField(
            model_name='pausedqueue',
            name='paused_by',
            field=models.CharField(blank=True, default='', help_text='Who paused it.', max_length=150, verbose_name='paused by'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='kind',
            field=models.CharField(choices=[('periodic', 'Periodic'), ('cron', 'Cron')], max_length=16, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='last_error',
            field=models.TextField(blank=True, default='', verbose_name='last error'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='last_run_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='last run at'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='last_status',
            field=models.SmallIntegerField(blank=True, choices=[(1, 'Waiting'), (2, 'Running'), (3, 'Done'), (4, 'Error'), (5, 'Cancelled')], null=True, verbose_name='last status'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='missing',
            field=models.BooleanField(default=False, help_text='The function is gone from the code.', verbose_name='missing'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='name',
            field=models.CharField(help_text='Dotted path of the function.', max_length=255, unique=True, verbose_name='name'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='next_run_at',
            field=models.DateTimeField(help_text='The next occurrence to enqueue.', verbose_name='next run at'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='paused',
            field=models.BooleanField(default=False, help_text='Paused: no run is enqueued until resumed.', verbose_name='paused'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='paused_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='paused at'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='paused_by',
            field=models.CharField(blank=True, default='', help_text='Who paused it.', max_length=150, verbose_name='paused by'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='queue',
            field=models.CharField(default='default', max_length=100, verbose_name='queue'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='spec',
            field=models.CharField(help_text='Seconds, or a standard cron expression.', max_length=255, verbose_name='spec'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='timezone',
            field=models.CharField(blank=True, default='', max_length=64, verbose_name='timezone'),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='updated_at',
            field=models.DateTimeField(auto_now=True, verbose_name='updated at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='args',
            field=models.TextField(default='', help_text='Encoded positional and keyword arguments.', verbose_name='args'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='attempts',
            field=models.PositiveIntegerField(default=0, help_text='Runs started so far.', verbose_name='attempts'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='created_at',
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='error_message',
            field=models.TextField(blank=True, default='', verbose_name='error message'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='expires_at',
            field=models.DateTimeField(blank=True, help_text='Deleted after this.', null=True, verbose_name='expires at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='finished at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='function',
            field=models.CharField(help_text='Dotted path of the task function.', max_length=255, verbose_name='function'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='history',
            field=models.JSONField(blank=True, default=list, help_text='One entry per attempt: worker, times, error.', verbose_name='history'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='kind',
            field=models.CharField(choices=[('delayed', 'Delayed'), ('periodic', 'Periodic'), ('cron', 'Cron'), ('framework', 'Django task')], default='delayed', max_length=16, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='lease expires at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='max_attempts',
            field=models.PositiveIntegerField(default=1, help_text='1 + retries.', verbose_name='max attempts'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='options',
            field=models.JSONField(blank=True, default=dict, help_text='Retry and timeout options.', verbose_name='options'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='priority',
            field=models.SmallIntegerField(default=0, help_text='Higher runs first.', verbose_name='priority'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='queue',
            field=models.CharField(default='default', max_length=100, verbose_name='queue'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='result',
            field=models.TextField(blank=True, help_text='Encoded return value.', null=True, verbose_name='result'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='schedule',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='runs', to='autotask.schedule', verbose_name='schedule'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='scheduled_at',
            field=models.DateTimeField(default=django.utils.timezone.now, help_text='Not run before this.', verbose_name='scheduled at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='started_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='started at'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='status',
            field=models.SmallIntegerField(choices=[(1, 'Waiting'), (2, 'Running'), (3, 'Done'), (4, 'Error'), (5, 'Cancelled')], default=1, verbose_name='status'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='traceback',
            field=models.TextField(blank=True, default='', verbose_name='traceback'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='ttl',
            field=models.FloatField(default=300, help_text='Seconds the outcome is kept.', verbose_name='ttl'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='unique_key',
            field=models.CharField(blank=True, max_length=255, null=True, verbose_name='unique key'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='unique_scope',
            field=models.SmallIntegerField(blank=True, choices=[(1, 'Active'), (2, 'Waiting'), (3, 'Window')], null=True, verbose_name='unique scope'),
        ),
        migrations.AlterField(
            model_name='taskqueue',
            name='worker_id',
            field=models.CharField(blank=True, default='', max_length=64, verbose_name='worker id'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='concurrency',
            field=models.PositiveIntegerField(default=1, verbose_name='concurrency'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='hostname',
            field=models.CharField(max_length=255, verbose_name='hostname'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='last_seen',
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name='last seen'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='pid',
            field=models.IntegerField(verbose_name='pid'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='queues',
            field=models.CharField(blank=True, default='', max_length=255, verbose_name='queues'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='started_at',
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name='started at'),
        ),
        migrations.AlterField(
            model_name='worker',
            name='worker_id',
            field=models.CharField(max_length=64, unique=True, verbose_name='worker id'),
        ),
    ]
