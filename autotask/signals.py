"""Signals around a task's life, named like Django's tasks framework.

``sender`` is the task definition (the decorated function) when known.
"""

from django.dispatch import Signal

task_enqueued = Signal()  # kwargs: task (DelayedTask), name
task_started = Signal()  # kwargs: task_id, name, attempt, worker_id
task_finished = Signal()  # kwargs: task_id, name, attempt, worker_id, status, result, error, duration
