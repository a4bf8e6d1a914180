"""A periodic task for the tracing worker (imported there via AUTOTASK_TEST_SCHEDULES only)."""

from autotask.tasks import periodic_task
from tests.tracing.tasks import tracer


@periodic_task(seconds=3600, start_now=True)
def hourly():
    with tracer.start_as_current_span("inside hourly"):
        return "ran"
