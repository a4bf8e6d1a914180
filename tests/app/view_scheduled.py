"""A schedule only a view's module import declares (tests.app.views.declare_schedule)."""

from autotask.tasks import periodic_task
from tests.app.tasks import insert_record


@periodic_task(seconds=1, start_now=True)
def every_second():
    insert_record("view_every_second")
