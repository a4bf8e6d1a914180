"""A schedule only a script declares (tests/integration/test_schedule_declared_elsewhere.py)."""

from autotask.tasks import periodic_task
from tests.app.tasks import insert_record


@periodic_task(seconds=1, start_now=True)
def every_second():
    insert_record("script_every_second")
