"""Tasks the tracing tests run: each opens a span of its own, which must nest under the run's."""

import asyncio

from opentelemetry import trace

from autotask.tasks import delayed_task

tracer = trace.get_tracer("tests.tracing")


@delayed_task
def traced_add(a, b):
    with tracer.start_as_current_span("inside traced_add"):
        return a + b


@delayed_task
async def traced_async(value):
    await asyncio.sleep(0)
    with tracer.start_as_current_span("inside traced_async"):
        return value


@delayed_task(retries=1, retry_delay=0.01)
def traced_failure():
    raise ValueError("traced failure")


def every_hour():
    """Declared periodic by the test that runs it (in-process), or by tests/tracing/scheduled.py."""
    with tracer.start_as_current_span("inside every_hour"):
        return "ran"
