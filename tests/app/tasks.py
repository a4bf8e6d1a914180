"""Task functions the tests enqueue and real worker processes import."""

import os
import sys
import time

from django.db import connection

from autotask.tasks import delayed_task


@delayed_task()
def add(a, b):
    return a + b


@delayed_task
def echo(*args, **kwargs):
    return [list(args), kwargs]


@delayed_task(retries=2, retry_delay=0.01)
def flaky(marker_dir, fail_times):
    """Fail ``fail_times`` times (counted by files in ``marker_dir``), then succeed."""
    count = len(os.listdir(marker_dir))
    if count < fail_times:
        open(os.path.join(marker_dir, f"{count}"), "w").close()
        raise RuntimeError(f"failure {count + 1}")
    return count


@delayed_task()
def boom():
    raise ValueError("boom")


@delayed_task()
def exits():
    sys.exit(3)


@delayed_task()
def record(key):
    """Insert a row into Record: the tests count executions by these rows."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO app_record (key, pid) VALUES (%s, %s)", [str(key), os.getpid()])
    return key


@delayed_task()
def sleep_then_record(key, seconds):
    time.sleep(seconds)
    return record.run(key)


@delayed_task()
def unserialisable_result():
    return object()


@delayed_task()
async def async_add(a, b):
    return a + b


@delayed_task()
def two_args(a, b):
    return a, b
