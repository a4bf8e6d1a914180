"""Receivers that use the ORM, connected in a worker process (AUTOTASK_TEST_SCHEDULES names this module)."""

from autotask.signals import task_finished, task_started

from .models import Record


def _started(sender, task_id, name, **kwargs):
    if name.startswith("tests.app.aio_tasks."):
        Record.objects.create(key=f"started-{task_id}", pid=0)


def _finished(sender, task_id, name, status, **kwargs):
    if name.startswith("tests.app.aio_tasks."):
        Record.objects.create(key=f"finished-{task_id}-{status}", pid=0)


task_started.connect(_started, weak=False)
task_finished.connect(_finished, weak=False)
