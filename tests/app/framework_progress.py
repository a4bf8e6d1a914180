"""A task of Django's tasks framework that reports progress (importable only with the framework)."""

import autotask

try:  # Django 6.0+
    from django.tasks import task
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task


@task()
def counts(n):
    current = autotask.current_task()
    for done in range(n):
        current.set_progress(done + 1, n, "framework")
    current.set_metadata(kind="framework")
    return n
