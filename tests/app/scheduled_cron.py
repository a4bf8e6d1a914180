"""A cron task firing every minute (imported via AUTOTASK_TEST_SCHEDULES)."""

from autotask.tasks import cron_task
from tests.app.tasks import insert_record


@cron_task(cron="* * * * *")
def every_minute():
    insert_record("every_minute")
