"""Periodic and cron tasks for the scheduling tests (imported via AUTOTASK_TEST_SCHEDULES)."""

from autotask.tasks import periodic_task
from tests.app.tasks import insert_record


def _record(key):
    insert_record(key)


@periodic_task(seconds=1, start_now=True)
def every_second():
    _record("every_second")


@periodic_task(seconds=1, start_now=True)
def failing_every_second():
    _record("failing")
    raise RuntimeError("periodic failure")
