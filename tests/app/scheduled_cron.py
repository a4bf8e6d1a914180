"""A cron task firing every minute (imported via AUTOTASK_TEST_SCHEDULES)."""

import os

from django.db import connection

from autotask.tasks import cron_task


@cron_task(cron="* * * * *")
def every_minute():
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO app_record (key, pid) VALUES (%s, %s)", ["every_minute", os.getpid()])
