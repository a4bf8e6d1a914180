"""Progress and metadata of a running task; workflows (chains, groups, callbacks): nullable columns only, so SQLite adds them without rebuilding the table."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('autotask', '0007_field_labels'),
    ]

    operations = [
        migrations.CreateModel(
            name='Workflow',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.SmallIntegerField(choices=[(1, 'Waiting'), (2, 'Running'), (3, 'Done'), (4, 'Error'), (5, 'Cancelled')], default=2, verbose_name='status')),
                ('name', models.CharField(blank=True, default='', max_length=255, verbose_name='name')),
                ('stages', models.JSONField(default=list, verbose_name='stages')),
                ('stage', models.PositiveIntegerField(default=0, help_text='The current stage.', verbose_name='stage')),
                ('remaining', models.PositiveIntegerField(default=0, help_text='Steps of the current stage not finished.', verbose_name='remaining')),
                ('failed', models.PositiveIntegerField(default=0, help_text='Steps of the current stage that failed.', verbose_name='failed')),
                ('ttl', models.FloatField(default=300, help_text='Seconds it is kept once finished.', verbose_name='ttl')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created at')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                ('expires_at', models.DateTimeField(blank=True, help_text='Deleted after this.', null=True, verbose_name='expires at')),
                ('error_message', models.TextField(blank=True, default='', verbose_name='error message')),
            ],
            options={
                'verbose_name': 'Workflow',
                'verbose_name_plural': 'Workflows',
            },
        ),
        migrations.AddField(
            model_name='taskqueue',
            name='metadata',
            field=models.JSONField(blank=True, null=True, verbose_name='metadata'),
        ),
        migrations.AddField(
            model_name='taskqueue',
            name='progress',
            field=models.JSONField(blank=True, null=True, verbose_name='progress'),
        ),
        migrations.AddField(
            model_name='taskqueue',
            name='workflow',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='steps', to='autotask.workflow', verbose_name='workflow'),
        ),
        migrations.AddIndex(
            model_name='taskqueue',
            index=models.Index(condition=models.Q(('workflow__isnull', False)), fields=['workflow'], name='autotask_workflow_idx'),
        ),
    ]
