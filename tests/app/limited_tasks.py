"""Tasks with concurrency and rate limits; each run appends its own record to a file.

The file is AUTOTASK_TEST_FLOW_LOG (one line per run, appended in one write):
the concurrency tests read when each run began and ended from it, the rate
tests the start the database recorded for it (the row's started_at, which is
the instant the rate gate counted).
"""

import os
import time

from autotask import current_task
from autotask.tasks import delayed_task


def _log(*fields):
    path = os.environ.get("AUTOTASK_TEST_FLOW_LOG")
    if not path:
        return
    line = " ".join(str(field) for field in fields) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@delayed_task(concurrency_limit=2, concurrency_key="group-{group}")
def limited(group, n, seconds=0.02):
    """At most 2 of a group run at once; records (group, begin, end, pid)."""
    begin = time.time()
    time.sleep(seconds)
    _log("run", group, n, f"{begin:.6f}", f"{time.time():.6f}", os.getpid())


@delayed_task(concurrency_limit=1)
def one_at_a_time(n):
    """A per-task limit of one (the key is the task's name)."""
    begin = time.time()
    time.sleep(0.01)
    _log("run", "one", n, f"{begin:.6f}", f"{time.time():.6f}", os.getpid())


@delayed_task(rate_limit="5/s", rate_key="rate-{group}")
def rated(group, n):
    """At most 5 starts a second per group; records the start the database holds for it."""
    from autotask.models import TaskQueue

    started = TaskQueue.objects.filter(pk=current_task().id).values_list("started_at", flat=True).get()
    _log("start", group, n, f"{started.timestamp():.6f}", os.getpid())


@delayed_task(concurrency_limit=1, concurrency_key="flaky", retries=1)
def flaky(n):
    """Fails its first attempt: the retry keeps the key's single slot."""
    if current_task().attempt == 1:
        raise RuntimeError("first attempt fails")
    _log("run", "flaky", n, f"{time.time():.6f}", f"{time.time():.6f}", os.getpid())


@delayed_task(concurrency_limit=1, concurrency_key="crash", retries=2)
def crash_slot(n, seconds=0.3):
    """One at a time; a begin line at the start, so a run killed midway shows too."""
    begin = time.time()
    _log("begin", "crash", n, f"{begin:.6f}", os.getpid())
    time.sleep(seconds)
    _log("run", "crash", n, f"{begin:.6f}", f"{time.time():.6f}", os.getpid())
