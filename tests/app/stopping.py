"""Tasks the stopping, process-mode and time-limit tests enqueue (real worker processes import them).

Each writes a marker file when it starts (``started``), so a test knows it
runs before it asks it to stop; a file is what every process (worker, child)
can write without a database connection of its own.
"""

import asyncio
import ctypes
import os
import signal
import time
from pathlib import Path

from autotask import current_task
from autotask.exceptions import SoftTimeLimitExceeded
from autotask.tasks import delayed_task


def mark(path, text=""):
    """Write ``text`` (default: this process's pid) to ``path`` at once: it exists only whole."""
    if path == os.devnull:
        return
    partial = Path(f"{path}.partial")
    partial.write_text(text or str(os.getpid()))
    os.replace(partial, path)


@delayed_task(retries=3, retry_delay=0.01)
def cooperative(started):
    """A sync task that checks should_stop (thread mode)."""
    mark(started)
    task = current_task()
    while True:
        task.raise_if_stopped()
        time.sleep(0.01)


@delayed_task(retries=3, retry_delay=0.01)
async def sleeps_async(started, seconds=60):
    mark(started)
    await asyncio.sleep(seconds)
    return "slept"


@delayed_task(retries=3, retry_delay=0.01, isolated=True)
def sleeps_isolated(started, seconds=60):
    mark(started)
    time.sleep(seconds)
    return "slept"


@delayed_task(isolated=True)
def child_pid():
    return os.getpid()


@delayed_task(isolated=True)
def noop():
    return None


@delayed_task(isolated=True)
def add(a, b):
    return a + b


@delayed_task(timeout=1, isolated=True)
def over_hard_limit(started):
    mark(started)
    time.sleep(60)


@delayed_task(timeout=1, retries=1, retry_delay=0.01, isolated=True)
def over_hard_limit_retried(started):
    mark(started, f"{os.getpid()}\n")
    time.sleep(60)


@delayed_task(soft_timeout=0.5, timeout=30, isolated=True)
def over_soft_limit(cleaned):
    try:
        time.sleep(60)
    except SoftTimeLimitExceeded:
        mark(cleaned, "cleaned up")
        raise


@delayed_task(isolated=True)
def dies(how):
    """End the child process: "exit" (os._exit), "kill" (SIGKILL), "segfault"."""
    if how == "exit":
        os._exit(7)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    time.sleep(60)


@delayed_task(retries=1, retry_delay=0.01, isolated=True)
def dies_once(marker):
    """Die the first time (marker absent), succeed the second."""
    if not os.path.exists(marker):
        mark(marker)
        os._exit(3)
    return "survived"


_hoard = []


@delayed_task(isolated=True)
def hoard(megabytes):
    """Keep ``megabytes`` allocated in this child (its RSS grows); return the pid."""
    _hoard.append(bytearray(os.urandom(1024)) * (megabytes * 1024))
    return os.getpid()


@delayed_task()
def plain_pid():
    return os.getpid()


@delayed_task(timeout=1)
async def async_with_timeout():
    await asyncio.sleep(0)


@delayed_task(retries=1, retry_delay=0.01, isolated=True)
def sleeps_first_time(marker):
    """Sleep a minute the first time (marker absent: written with the child's pid); return at once after."""
    if os.path.exists(marker):
        return "second run"
    mark(marker)
    time.sleep(60)
    return "first run"


@delayed_task()
def sleeps_plain(seconds):
    time.sleep(seconds)
    return os.getpid()


# -- what a stop reports: autotask's signal, and the tasks framework's ----------

from django.dispatch import receiver  # noqa: E402 - the receivers below only

from autotask.signals import task_finished  # noqa: E402
from tests.app.tasks import insert_record  # noqa: E402


@receiver(task_finished)
def _on_finished(sender, task_id, name, status, **kwargs):
    if name.startswith(__name__ + "."):
        insert_record(f"stopping-finished:{task_id}:{status}")


try:  # Django 6.0+
    from django.tasks import task as framework_task
    from django.tasks.signals import task_finished as framework_finished
except ImportError:
    try:  # Django 5.2 with the django-tasks backport
        from django_tasks import task as framework_task
        from django_tasks.signals import task_finished as framework_finished
    except ImportError:  # no tasks framework: no framework task here
        framework_task = framework_finished = None

if framework_task is not None:

    @framework_task()
    async def framework_sleeps(started):
        mark(started)
        await asyncio.sleep(60)

    @receiver(framework_finished)
    def _on_framework_finished(sender, task_result, **kwargs):
        if task_result.task.func is framework_sleeps.func:
            insert_record(f"framework-finished:{task_result.id}:{task_result.status}")
