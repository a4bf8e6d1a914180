"""Tasks of Django's tasks framework that the backend tests enqueue and real workers import."""

from django.dispatch import receiver

from tests.app.tasks import insert_record

try:  # Django 6.0+
    from django.tasks import task
    from django.tasks.signals import task_finished, task_started
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task
    from django_tasks.signals import task_finished, task_started


def _record(key):
    insert_record(str(key))


@task
def add(a, b):
    return a + b


@task()
def echo(*args, **kwargs):
    return {"args": args, "kwargs": kwargs}


@task()
def boom(message="boom"):
    raise ValueError(message)


@task()
def record(key):
    """Insert a Record row: tests read the order tasks ran in from these rows."""
    _record(key)
    return key


@task(priority=-10, queue_name="other")
def record_low(key):
    _record(key)
    return key


@task()
async def async_add(a, b):
    return a + b


@task(takes_context=True)
def whoami(context, tag):
    result = context.task_result
    return {
        "tag": tag,
        "attempt": context.attempt,
        "id": result.id,
        "status": str(result.status),
        "args": result.args,
        "worker_ids": result.worker_ids,
        "enqueued_at": result.enqueued_at.isoformat(),
    }


@task(takes_context=True, retries=2, retry_delay=0.01, backoff=1.0)
def fail_until(context, succeed_on):
    """Fail until attempt ``succeed_on``, then return the attempt number."""
    if context.attempt < succeed_on:
        raise RuntimeError(f"attempt {context.attempt} failed")
    return context.attempt


@task(backend="retrying", queue_name="anything")
def always_fails():
    """Its backend's OPTIONS give it one retry."""
    raise KeyError("missing")


@task()
def unstorable_result():
    return object()


@task()
def signalled(fail=False):
    if fail:
        raise RuntimeError("signalled failure")
    return "ok"


def _plain(x):
    return x


renamed = task(_plain)  # its module path names the plain function, not this task


@receiver(task_started)
def _on_started(sender, task_result, **kwargs):
    if task_result.task.func is signalled.func:
        _record(f"started:{task_result.id}:{task_result.status}:{sender.__name__}:{task_result.attempts}")


@receiver(task_finished)
def _on_finished(sender, task_result, **kwargs):
    if task_result.task.func is signalled.func:
        value = task_result.return_value if task_result.status == "SUCCESSFUL" else len(task_result.errors)
        _record(f"finished:{task_result.id}:{task_result.status}:{sender.__name__}:{value}")
