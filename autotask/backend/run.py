"""One attempt of a framework task inside a worker: its context, JSON result and signals."""

import logging
import threading
from functools import partial

from .. import serialization
from ..exceptions import SerializationError
from ..task import DONE, ERROR, FINISHED
from ..timeutil import claimed_datetime, parse_iso
from . import AutotaskBackend
from .framework import (
    FRAMEWORK,
    TaskContext,
    TaskResult,
    TaskResultStatus,
    task_backends,
    task_finished,
    task_started,
)
from .results import STATUS_MAP, _first_start, _task_as_stored, errors_of, to_json

logger = logging.getLogger("autotask")
# The framework's own logger: its task_finished receiver logs a failed task at ERROR.
framework_logger = logging.getLogger("django.tasks" if FRAMEWORK == "django.tasks" else "django_tasks")


def backend_class(alias):
    """The class of the backend ``alias`` (the sender of the framework's signals)."""
    try:
        return type(task_backends[alias])
    except Exception:  # noqa: BLE001 - an alias this process lacks: still say who ran it
        return AutotaskBackend


class FrameworkRun:
    """One attempt of a framework task in a worker: context, JSON result, signals."""

    def __init__(self, claimed, target, worker_id, started_at):
        self.claimed = claimed
        options = claimed.options or {}
        self.alias = options.get("backend", target.backend)
        task = _task_as_stored(target, claimed.priority, claimed.queue, parse_iso(options.get("run_after")))
        self.result = TaskResult(
            task=task,
            id=str(claimed.id),
            status=TaskResultStatus.RUNNING,
            enqueued_at=claimed_datetime(claimed.created_at),
            started_at=_first_start(claimed.history) or started_at,
            last_attempted_at=started_at,
            finished_at=None,
            args=[],
            kwargs={},
            backend=self.alias,
            errors=errors_of(claimed.history),
            worker_ids=[*(entry.get("worker_id", "") for entry in claimed.history), worker_id],
        )
        self.sender = backend_class(self.alias)

    def prepare(self, func):
        """Return the callable to run: with the TaskContext first when the task takes it."""
        if self.result.task.takes_context:
            return partial(func, TaskContext(task_result=self.result))
        return func

    def started(self, args, kwargs):
        # Decoded from the row, so already JSON data; the context sees them too.
        object.__setattr__(self.result, "args", list(args))
        object.__setattr__(self.result, "kwargs", dict(kwargs))
        self._send(task_started)

    def encode_result(self, value):
        """Normalise ``value`` by the framework's JSON rules and encode it for the row."""
        try:
            value = to_json(value, "the return value")
        except ValueError as exc:  # undecodable bytes: as unstorable as an unsupported type
            raise SerializationError(str(exc)) from exc
        object.__setattr__(self.result, "_return_value", value)
        return serialization.encode_value(value, serializer="json")

    def finished(self, outcome):
        status = STATUS_MAP[outcome.status]
        object.__setattr__(self.result, "status", status)
        object.__setattr__(self.result, "errors", errors_of(outcome.history))
        if outcome.status in FINISHED:
            object.__setattr__(self.result, "finished_at", outcome.finished_at)
        if outcome.status != DONE:
            object.__setattr__(self.result, "_return_value", None)
        if outcome.status != ERROR:
            self._send(task_finished)
            return
        # autotask's logger reports the failure at ERROR with the exception and the
        # task's context; the framework's receiver would log it a second time.
        _failures_reported.active = True
        try:
            self._send(task_finished)
        finally:
            _failures_reported.active = False

    def _send(self, signal):
        # A failing receiver must not lose the task's outcome: log it and go on.
        for receiver, response in signal.send_robust(self.sender, task_result=self.result):
            if isinstance(response, Exception):
                logger.error(
                    "a receiver of the tasks framework's signal failed (%r) for task #%s",
                    receiver,
                    self.claimed.id,
                    exc_info=response,
                )


_failures_reported = threading.local()  # set while task_finished is sent for a task that failed


class _OneErrorPerFailure(logging.Filter):
    """Log the framework's "state=FAILED" line at INFO, without the exception, for autotask's runs.

    autotask logs the same failure at ERROR with its exception and context
    (``autotask`` logger): error trackers then record one event per failure.
    """

    def filter(self, record):
        if getattr(_failures_reported, "active", False) and record.levelno >= logging.ERROR:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None
        return True


framework_logger.addFilter(_OneErrorPerFailure())
