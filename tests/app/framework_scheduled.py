"""Scheduled tasks of Django's tasks framework (imported via AUTOTASK_TEST_SCHEDULES or by name)."""

try:  # Django 6.0+
    from django.tasks import task
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task

from tests.app.framework_tasks import _record


@task(takes_context=True, periodic=1, start_now=True, ttl=600)
def every_second(context):
    _record(f"fw_every_second:{context.task_result.id}")
    return context.attempt


@task(cron="0 4 * * MON-FRI", timezone="Europe/Paris", priority=5, queue_name="other")
def weekday_mornings():
    return "good morning"


@task(backend="retrying", periodic=3600)
def hourly():
    """Its runs take the retrying backend's OPTIONS."""
