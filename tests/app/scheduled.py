"""Periodic and cron tasks for the scheduling tests (imported via AUTOTASK_TEST_SCHEDULES)."""

import os

from django.db import connection

from autotask.tasks import periodic_task


def _record(key):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO app_record (key, pid) VALUES (%s, %s)", [key, os.getpid()])


@periodic_task(seconds=1, start_now=True)
def every_second():
    _record("every_second")


@periodic_task(seconds=1, start_now=True)
def failing_every_second():
    _record("failing")
    raise RuntimeError("periodic failure")
