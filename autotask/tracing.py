"""OpenTelemetry tracing (``AUTOTASK_TRACING``): a send span per enqueue, a process span per attempt.

The send span's context travels with the task: the configured propagator
(W3C ``traceparent`` by default) writes it into the row's ``options`` under
:data:`CARRIER`, so no column is needed.  The worker's process span is a
*child* of that context, and also links to it: the worker has no context of
its own to continue (no request started the attempt), so the enqueue's trace
is the one the attempt belongs to, and trace views show the task under the
request that enqueued it.  The link keeps the relation visible to tools that
follow the messaging conventions' links.  Each attempt of a retried task is
another child of the same send span.  Periodic and cron runs are enqueued by
the scheduler, not by a caller: their process spans are roots.

OpenTelemetry (the ``opentelemetry`` extra) is imported here only, and only
once tracing is on; with it off, an enqueue pays one setting read.
"""

import functools
from contextlib import contextmanager
from importlib import metadata
from types import SimpleNamespace

from django.core.exceptions import ImproperlyConfigured

SYSTEM = "autotask"  # messaging.system
CARRIER = "trace"  # the options key holding the propagated context (e.g. {"traceparent": ...})
INSTALL_HINT = "pip install 'autotask[opentelemetry]'"


def missing_extra():
    """Why OpenTelemetry cannot be imported (an ImportError), or None when it can."""
    try:
        import opentelemetry.propagate
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        return exc
    return None


@functools.cache
def _otel():
    error = missing_extra()
    if error is not None:
        # Reported by the system check autotask.E060 too; never a silent no-op.
        raise ImproperlyConfigured(
            f"AUTOTASK_TRACING is on but OpenTelemetry cannot be imported ({error}): "
            f"{INSTALL_HINT}, or set AUTOTASK_TRACING = False."
        )
    from opentelemetry import propagate, trace

    # A tracer taken before the application sets its tracer provider is a proxy
    # that follows the provider once set: caching it is safe.
    return SimpleNamespace(propagate=propagate, trace=trace, tracer=trace.get_tracer("autotask", _version()))


def _common(function, queue, operation):
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": queue,
        "autotask.task.function": function,
    }


def send(rows, insert, count=None):
    """Run ``insert()``, which stores ``rows``, in a send span the rows carry; return its ids.

    ``count`` is how many tasks the insert stores when that is not ``len(rows)``
    (an ``enqueue_many`` stores many calls from one template row): the span
    then has ``messaging.batch.message_count``.  A single task's id becomes
    ``messaging.message.id``.
    """
    otel = _otel()
    first = rows[0]
    count = len(rows) if count is None else count
    attributes = _common(first.function, first.queue, "send")
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    # The function names the span (every task of a queue shares the queue's name).
    name, kind = f"send {first.function}", otel.trace.SpanKind.PRODUCER
    with otel.tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
        carrier = {}
        otel.propagate.inject(carrier)
        if carrier:  # nothing when no tracer provider is configured (the span is not recorded)
            for row in rows:
                row.options = {**row.options, CARRIER: carrier}  # a copy: options may be shared
        ids = insert()
        if count == 1 and len(ids) == 1:
            span.set_attribute("messaging.message.id", str(ids[0]))
    return ids


def process(task, worker_id, run):
    """Run the attempt ``run()`` in its process span; return the attempt's Outcome.

    ``run()`` never raises; it returns an object with ``outcome``, ``state``
    (done, retry or error) and, when the attempt failed, ``error`` (the
    exception) and ``error_type`` (the dotted name of what the task raised).
    The span's parent is the context the task was enqueued in (none for a
    scheduled run); task code runs with the span current, so its own spans
    (database, HTTP, ...) are children of it, async tasks' included.
    """
    with processing(task, worker_id) as record:
        attempt = record(run())
    return attempt.outcome


@contextmanager
def processing(task, worker_id):
    """The process span of one attempt, current for the block; yields ``record(attempt)``.

    :func:`process` for runners that cannot pass a callable: the worker's
    event loop enters it inside the coroutine's own context, so that the
    span is current for that task's coroutines only.  ``record`` takes the
    attempt (as :func:`process`'s ``run()`` returns it) and returns it.
    """
    otel = _otel()
    trace = otel.trace
    parent = otel.propagate.extract(task.options.get(CARRIER) or {})  # an empty context: a root span
    enqueued = trace.get_current_span(parent).get_span_context()
    attributes = _common(task.function, task.queue, "process")
    attributes.update(
        {
            "messaging.message.id": str(task.id),
            "autotask.task.attempt": task.attempts,
            "messaging.client.id": worker_id,  # the worker that ran the attempt
        }
    )
    with otel.tracer.start_as_current_span(
        f"process {task.function}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        links=[trace.Link(enqueued)] if enqueued.is_valid else None,
        # The attempt never raises; a failure is recorded from what it returns.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:

        def record(attempt):
            span.set_attribute("autotask.task.outcome", attempt.state)
            if attempt.error is not None:
                span.record_exception(attempt.error)
                span.set_attribute("error.type", attempt.error_type)
                span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.outcome.error_message))
            return attempt

        yield record


def unconfigured():
    """True when tracing is on but this process has no tracer provider: its spans are dropped."""
    trace = _otel().trace
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


__all__ = ["CARRIER", "SYSTEM", "missing_extra", "process", "processing", "send", "unconfigured"]


def _version():
    """The installed autotask's version (the package root is not imported: it sits above every layer)."""
    try:
        return metadata.version("autotask")
    except metadata.PackageNotFoundError:
        return None
