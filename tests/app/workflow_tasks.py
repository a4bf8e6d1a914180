"""Task functions of the workflow and progress tests (real worker processes import them)."""

import os
import time

from autotask import current_task
from autotask.tasks import delayed_task

from .tasks import insert_record


@delayed_task()
def plus(value, n):
    """A chain's link: the previous result plus ``n``."""
    return value + n


@delayed_task()
def start(value):
    return value


@delayed_task()
def square(x, key=None):
    """A group's step: records its run under ``key`` (if given), returns x * x."""
    if key:
        insert_record(key)
    return x * x


@delayed_task()
def slow_square(x, key, seconds):
    insert_record(key)
    time.sleep(seconds)
    return x * x


@delayed_task()
def total(results, key):
    """A group's callback: records each run under ``key``, returns the sum of the results."""
    insert_record(key)
    return sum(results)


@delayed_task()
def fail(*args):
    raise RuntimeError(f"step failed with {args!r}")


@delayed_task()
def report_progress(gate, steps):
    """Report progress and metadata, then wait (at most 60 s) until the file ``gate`` exists."""
    task = current_task()
    task.set_metadata(phase="counting", pid=os.getpid())
    for done in range(1, steps + 1):
        task.set_progress(done, steps, f"step {done}")
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    task.set_metadata(phase="finished")
    return steps
