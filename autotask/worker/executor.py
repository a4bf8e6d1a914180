"""Run one claimed task and classify what became of it."""

import asyncio
import functools
import inspect
import logging
import sys
import time
import traceback as tb
from datetime import timedelta
from typing import NamedTuple

from django.db import connections
from django.utils import timezone

from .. import serialization, tracing
from ..conf import conf
from ..context import CurrentTask, running
from ..db.base import Outcome
from ..definitions import registry
from ..definitions.options import failed_expiry
from ..exceptions import (
    CorruptPayload,
    NotADeclaredTask,
    SerializationError,
    TaskFunctionNotFound,
    TaskStopped,
    TaskTimeout,
)
from ..models import KIND_FRAMEWORK
from ..retry import backoff_delay
from ..signals import task_finished, task_started
from ..task import CANCELLED, CANCELLED_KEPT, DONE, ERROR, STATUS_NAMES, WAITING

logger = logging.getLogger("autotask")


class PermanentFailure(Exception):
    """A failure that no retry can mend (bad payload, changed signature, ...)."""


class Attempt(NamedTuple):
    """What became of one attempt: its outcome, as a word, and what the task raised."""

    outcome: Outcome
    state: str  # done, retry or error
    error: BaseException | None
    error_type: str | None  # the dotted name of the exception the task raised


def execute(task, worker_id, release_connections=True, current=None):
    """Run ``task`` (a ClaimedTask) here; return its :class:`Outcome`. Never raises.

    ``release_connections`` closes the connections the task opened, as a
    worker does after each task; in-process test runs, whose task shares the
    test's connection and transaction, pass False.  ``current`` is the
    attempt's :class:`CurrentTask` when the worker made it (to stop it);
    None makes one.  With AUTOTASK_TRACING the attempt runs in an
    OpenTelemetry process span.
    """
    if conf.TRACING:
        return tracing.process(
            task, worker_id, lambda: _attempt(task, worker_id, release_connections, current)
        )
    return _attempt(task, worker_id, release_connections, current).outcome


def _attempt(task, worker_id, release_connections, current=None):
    """Run ``task``; return the :class:`Attempt`. Never raises."""
    run = Run(task, worker_id, release_connections, current)
    try:
        run.prepare()
        with running(run.current):
            value = _call(run.func, run.args, run.kwargs, run.timeout, run.current)
        result = run.encode(value)
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a task must not end the worker
        return run.failed(exc)
    return run.succeeded(result)


class Run:
    """One attempt of a task, split around the call so that every runner shares the rest.

    :meth:`prepare` resolves the function, decodes the arguments and sends
    ``task_started``; the runner then calls ``func(*args, **kwargs)`` its own
    way (a pool thread directly, the worker's event loop as a coroutine) with
    :attr:`current` as :func:`autotask.current_task`, encodes the value with
    :meth:`encode`, and ends with :meth:`succeeded` or, inside its ``except``
    block (framework receivers read ``sys.exc_info()``), :meth:`failed`.
    Both classify, release the task's connections, log, send
    ``task_finished`` and return the :class:`Attempt`; neither raises.
    """

    __slots__ = (
        "args",
        "clock",
        "current",
        "framework",
        "func",
        "kwargs",
        "log",
        "release_connections",
        "sender",
        "started_at",
        "task",
        "worker_id",
    )

    def __init__(self, task, worker_id, release_connections=True, current=None):
        self.task = task
        self.worker_id = worker_id
        self.release_connections = release_connections
        self.started_at = timezone.now()
        self.clock = time.monotonic()
        self.log = {
            "task_id": task.id,
            "function": task.function,
            "attempt": task.attempts,
            "worker_id": worker_id,
        }
        self.sender = self.framework = self.func = None
        # The attempt's CurrentTask: the worker's when it made one (to stop the attempt).
        self.current = current if current is not None else CurrentTask.of(task, worker_id)
        self.args, self.kwargs = (), {}

    @property
    def timeout(self):
        return self.task.options.get("timeout")

    def prepare(self):
        """Resolve the function and its arguments, send ``task_started``; raise when it cannot run."""
        task, worker_id = self.task, self.worker_id
        if self.current.should_stop:
            raise TaskStopped(f"task {task.function} #{task.id} was asked to stop before it started")
        func, self.sender = _resolve(task.function)
        self.framework = framework = _framework_run(task, self.sender, worker_id, self.started_at)
        if framework:
            func = framework.prepare(func)  # adds the TaskContext when the task takes it
        self.func = func
        self.args, self.kwargs = args, kwargs = _arguments(task, func)
        if task_started.receivers:
            task_started.send(
                sender=self.sender,
                task_id=task.id,
                name=task.function,
                attempt=task.attempts,
                worker_id=worker_id,
            )
        if framework:
            framework.started(args, kwargs)
        logger.debug("task started", extra=self.log)

    def encode(self, value):
        return _encode_result(self.task, value, self.framework)

    def succeeded(self, result):
        """The task returned (``result``: encoded); return the :class:`Attempt`."""
        outcome = _success(self.task, result, self.started_at, self.worker_id)
        return self._finish(outcome, None)

    def failed(self, exc):
        """The task, or preparing it, raised ``exc``; return the :class:`Attempt`."""
        outcome = _failure(self.task, exc, self.started_at, self.worker_id, self.current.should_stop)
        return self._finish(outcome, exc)

    def _finish(self, outcome, error):
        try:
            if self.framework:
                self.framework.finished(outcome)
        finally:
            if self.release_connections:
                _release_task_connections()
        duration = time.monotonic() - self.clock
        state = _state(outcome)
        _report(self.task, outcome, state, self.sender, self.worker_id, duration, self.log, error)
        return Attempt(outcome, state, error, None if error is None else _exception_name(error))


def failed_outside(task, worker_id, exc, started_at, duration, stopped=False):
    """The outcome of an attempt that ended outside the task's code; reported like any other.

    A child process that died, or that was killed at the task's time limit
    or after a stop: ``exc`` says how.  Retried when attempts are left,
    unless ``stopped`` (then CANCELLED).
    """
    try:
        _, sender = _resolve(task.function)
    except Exception:  # noqa: BLE001 - only the signal's sender: the outcome stands without it
        sender = None
    outcome = _failure(task, exc, started_at, worker_id, stopped)
    state = _state(outcome)
    log = {"task_id": task.id, "function": task.function, "attempt": task.attempts, "worker_id": worker_id}
    _report(task, outcome, state, sender, worker_id, duration, log, exc)
    return outcome


def _resolve(name):
    try:
        target = registry.get(name)  # only a declared task; refused before anything is called
    except NotADeclaredTask as exc:
        raise PermanentFailure(str(exc)) from exc
    return registry.callable_of(target), target if target is not registry.callable_of(target) else None


def _framework_run(task, target, worker_id, started_at):
    """Return a FrameworkRun when ``target`` is a django.tasks Task (enqueued or scheduled), else None."""
    if task.kind != KIND_FRAMEWORK and not ({"django.tasks", "django_tasks"} & sys.modules.keys()):
        return None  # no tasks framework loaded, so no framework task to run
    try:  # here: the tasks framework is optional (Django 6.0+, or the backport)
        from ..backend.results import is_framework_task
        from ..backend.run import FrameworkRun
    except ImportError as exc:
        raise PermanentFailure(
            f"{task.function} was enqueued through Django's tasks framework, which cannot be "
            f"imported here: {exc}"
        ) from exc
    if not is_framework_task(target):
        if task.kind == KIND_FRAMEWORK:
            raise PermanentFailure(f"{task.function} is no longer a task of Django's tasks framework")
        return None
    return FrameworkRun(task, target, worker_id, started_at)


def _arguments(task, func):
    try:
        args, kwargs = serialization.decode_call(task.args)
    except CorruptPayload as exc:
        raise PermanentFailure(f"stored arguments cannot be decoded: {exc}") from exc
    try:
        _signature(func).bind(*args, **kwargs)
    except TypeError as exc:
        raise PermanentFailure(
            f"the stored arguments no longer match the signature of {task.function}: {exc}"
        ) from exc
    except ValueError:
        pass  # no signature available (some builtins): let the call decide
    return args, kwargs


@functools.lru_cache(maxsize=1024)
def _cached_signature(func):
    return inspect.signature(func)


def _signature(func):
    """inspect.signature(func), computed once per function: it costs more than a short task."""
    if isinstance(func, functools.partial):
        # Built anew for each run (a framework task's context): caching it would
        # only fill the cache with runs, each holding its arguments.
        return inspect.signature(func)
    try:
        return _cached_signature(func)
    except TypeError:  # an unhashable callable object: no caching
        return inspect.signature(func)


def _call(func, args, kwargs, timeout, current=None):
    if registry.is_async(func):
        coro = func(*args, **kwargs)
        if timeout:
            coro = asyncio.wait_for(coro, timeout)
        if current is not None:
            coro = _stoppable(coro, current)
        try:
            return asyncio.run(coro)
        except TimeoutError as exc:
            if timeout:
                raise TaskTimeout(f"timed out after {timeout:g} seconds") from exc
            raise
        except asyncio.CancelledError as exc:
            if current is not None and current.should_stop:  # as on the event loop: a stop, said so
                raise TaskStopped(f"task {current.name} #{current.id} was asked to stop") from exc
            raise
    return func(*args, **kwargs)


async def _stoppable(coro, current):
    """Await ``coro``; a stop asked for from another thread cancels it (CancelledError)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def cancel():
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass  # the loop has closed: the task has ended already

    current.on_stop(cancel)
    return await coro


def _encode_result(task, value, framework=None):
    try:
        if framework:
            return framework.encode_result(value)  # the framework's JSON rules
        return serialization.encode_value(value)
    except SerializationError as exc:
        raise PermanentFailure(f"the return value cannot be stored: {exc}") from exc


def _history(task, worker_id, started_at, finished_at, exc=None, trace=""):
    entry = {
        "attempt": task.attempts,
        "worker_id": worker_id,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
    }
    if exc is not None:
        entry["exception"] = _exception_name(exc)
        entry["error"] = str(exc)
        entry["traceback"] = trace
    return [*task.history, entry]


def _exception_name(exc):
    """The dotted name of what the task raised (the cause, for a PermanentFailure that has one)."""
    original = exc.__cause__ if isinstance(exc, PermanentFailure) and exc.__cause__ else exc
    return f"{type(original).__module__}.{type(original).__qualname__}"


def _success(task, result, started_at, worker_id):
    now = timezone.now()
    return Outcome(
        id=task.id,
        status=DONE,
        finished_at=now,
        result=result,
        expires_at=now + timedelta(seconds=task.ttl),
        history=_history(task, worker_id, started_at, now),
        schedule_id=task.schedule_id,
    )


def _failure(task, exc, started_at, worker_id, stopped=False):
    now = timezone.now()
    trace = "".join(tb.format_exception(exc))
    message = _message(exc)
    history = _history(task, worker_id, started_at, now, exc, trace)
    if stopped or isinstance(exc, TaskStopped):
        # Asked to stop: whatever it raised on the way out, it ends CANCELLED, never retried.
        return _cancelled(task, now, message, trace, history)
    retryable = not isinstance(exc, PermanentFailure) and task.attempts < task.max_attempts
    if retryable:
        options = task.options
        delay = backoff_delay(
            task.attempts,
            base=_option(options, "retry_delay", conf.RETRY_DELAY),
            factor=_option(options, "backoff", conf.RETRY_BACKOFF),
            cap=_option(options, "max_retry_delay", conf.RETRY_MAX_DELAY),
        )
        return Outcome(
            id=task.id,
            status=WAITING,
            finished_at=now,
            error_message=message,
            traceback=trace,
            retry_at=now + timedelta(seconds=delay),
            history=history,
            schedule_id=task.schedule_id,
        )
    return Outcome(
        id=task.id,
        status=ERROR,
        finished_at=now,
        error_message=message,
        traceback=trace,
        expires_at=failed_expiry(task.options, now),  # failures are kept longer than results
        history=history,
        schedule_id=task.schedule_id,
    )


def _cancelled(task, now, message, trace, history):
    return Outcome(
        id=task.id,
        status=CANCELLED,
        finished_at=now,
        error_message=f"stopped on request: {message}",
        traceback=trace,
        expires_at=now + CANCELLED_KEPT,
        history=history,
        schedule_id=task.schedule_id,
    )


def _option(options, key, default):
    value = options.get(key)
    return default if value is None else value


def _message(exc):
    """``str(exc)`` as the original stored it; the class name when that is empty."""
    if isinstance(exc, SystemExit):
        return f"the task called sys.exit({exc.code!r})"
    if isinstance(exc, asyncio.CancelledError):
        return str(exc) or "the task was cancelled"
    text = str(exc)
    return text or type(exc).__name__


def _release_task_connections():
    """Close the connections task code opened, the way Django does after a request."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            # Task code left a transaction open (e.g. a generator never closed):
            # discard it rather than commit half of it.
            connection.close()
        else:
            connection.close_if_unusable_or_obsolete()


def _state(outcome):
    """The outcome as a word: done, retry or error."""
    return STATUS_NAMES[outcome.status] if outcome.status != WAITING else "retry"


def _report(task, outcome, state, sender, worker_id, duration, log, error):
    log.update(duration=round(duration, 6), outcome=state)
    if outcome.status == DONE:
        logger.info("task %s #%s done in %.3fs", task.function, task.id, duration, extra=log)
    elif outcome.status == CANCELLED:
        logger.warning("task %s #%s stopped on request", task.function, task.id, extra=log)
    elif outcome.status == WAITING:
        logger.warning(
            "task %s #%s failed (attempt %s of %s), retrying: %s",
            task.function,
            task.id,
            task.attempts,
            task.max_attempts,
            outcome.error_message,
            extra=log,
        )
    else:
        # exc_info makes error trackers (Sentry, ...) record it like logger.exception.
        logger.error(
            "task %s #%s failed: %s",
            task.function,
            task.id,
            outcome.error_message,
            exc_info=error,
            extra=log,
        )
    if task_finished.receivers:
        task_finished.send(
            sender=sender,
            task_id=task.id,
            name=task.function,
            attempt=task.attempts,
            worker_id=worker_id,
            status=outcome.status,
            result=outcome.result,
            error=outcome.error_message,
            duration=duration,
        )


__all__ = ["TaskFunctionNotFound", "execute", "failed_outside"]
