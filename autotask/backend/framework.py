"""Django's tasks framework as this process has it, and the options autotask adds to its tasks.

``django.tasks`` (Django 6.0+) or the ``django-tasks`` backport on Django 5.2,
whichever is importable; importing this module raises ImportError when neither is.
"""

from ..definitions.options import FROM_SETTING

try:  # Django 6.0+
    from django.tasks import task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    FRAMEWORK = "django.tasks"
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import checks as _framework_checks  # noqa: F401 - registers check_tasks
    from django_tasks import task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

    FRAMEWORK = "django_tasks"


# autotask's own per-task options that framework tasks accept too (None: the backend's OPTIONS).
EXTRA_OPTIONS = (
    *("retries", "ttl", "timeout", "retry_delay", "backoff", "max_retry_delay", "failed_ttl"),
    *("soft_timeout", "isolated"),
    *("unique", "unique_key"),
    *("concurrency_limit", "concurrency_key", "rate_limit", "rate_key"),
)


def _given(key, value):
    """Whether an autotask option was given: None means "not given", but failed_ttl=None keeps forever."""
    return value is not FROM_SETTING if key == "failed_ttl" else value is not None


__all__ = [
    "EXTRA_OPTIONS",
    "FRAMEWORK",
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "normalize_json",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
