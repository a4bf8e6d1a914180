"""Task functions the tests enqueue and real worker processes import."""

import os
import sys
import threading
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


def insert_record(key):
    """Insert a row into Record: the tests count executions by these rows."""
    with connection.cursor() as cursor:
        # KEY is a reserved word on MySQL/MariaDB: quote the column.
        column = connection.ops.quote_name("key")
        cursor.execute(f"INSERT INTO app_record ({column}, pid) VALUES (%s, %s)", [str(key), os.getpid()])


@delayed_task()
def record(key):
    """Record one execution under ``key``."""
    insert_record(key)
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


# -- fault-injection tasks (tests/recovery) -----------------------------------------


@delayed_task(retries=3, retry_delay=0.05)
def record_retrying(key, seconds=0.0):
    """Sleep ``seconds``, then record ``key``; retried when a fault interrupts it."""
    if seconds:
        time.sleep(seconds)
    return record.run(key)


def first_time(marker):
    """Record ``marker``; return True if this is the first time (a task's first attempt)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM app_record WHERE {connection.ops.quote_name('key')} = %s", [marker])
        first = cursor.fetchone() is None
    if first:
        record.run(marker)
    return first


@delayed_task(retries=3, retry_delay=0.05)
def record_after_first_attempt(key, seconds):
    """On the first attempt mark it started and sleep ``seconds``; later attempts record at once."""
    if first_time(f"started:{key}"):
        time.sleep(seconds)
    return record.run(key)


@delayed_task(retries=3, retry_delay=0.05)
def record_dropping_connection(key):
    """On the first attempt lose the database connection mid-task (PostgreSQL); then record."""
    if first_time(f"dropped:{key}"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    return record.run(key)


@delayed_task()
def never_returns():
    threading.Event().wait()


@delayed_task()
def application_name():
    """The application_name of the database connection task code gets (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name')")
        return cursor.fetchone()[0]
