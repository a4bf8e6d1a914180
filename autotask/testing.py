"""Helpers for a project's own tests: run tasks in the test process, see what was enqueued.

Tasks are stored in the test database as usual (``AUTOTASK_IS_ACTIVE = True``
in the test settings, so the decorators store calls).  Nothing needs a
worker process::

    from unittest.mock import call

    from autotask import testing

    def test_signup_sends_mail(client):
        client.post("/signup/", {"email": "ada@example.com"})
        assert testing.enqueued(send_welcome) == [call("ada@example.com")]
        ran = testing.run_due()
        assert [r.name for r in ran] == ["shop.tasks.send_welcome"]
        assert ran[0].status == testing.DONE

    def test_report_is_built_at_once():
        with testing.eager():
            handle = build_report(2026)  # runs here, before returning
        assert handle.result == {"year": 2026, "rows": 12}

Tasks run in the calling thread, on the test's database connection, inside
its transaction (so plain ``TestCase`` tests work).  Each attempt runs in a
savepoint: a failed attempt's database writes are rolled back, so one
failing task cannot break the test's transaction.
"""

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Self
from unittest import mock

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import serialization
from .conf import conf
from .context import reports
from .db import flow, get_ops
from .db.base import CLAIM_COLUMNS, ClaimedTask
from .definitions.options import function_path
from .enqueue import workflows
from .enqueue.handle import DelayedTask
from .maintenance import scheduling
from .models import TaskQueue
from .signals import task_enqueued
from .task import CANCELLED, DONE, ERROR, HELD, RUNNING, STATUS_NAMES, WAITING
from .worker import executor

__all__ = [
    "CANCELLED",
    "DONE",
    "ERROR",
    "RUNNING",
    "WAITING",
    "Ran",
    "TaskFailed",
    "eager",
    "enqueued",
    "run_due",
]

MAX_TASKS = 1000  # run_due's default guard against a task that keeps enqueueing itself
LEASE = timedelta(hours=1)  # nothing recovers leases in a test process; just longer than any test


class TaskFailed(AssertionError):
    """A task run by :func:`eager` with ``raise_errors=True`` ended in ERROR."""


@dataclass(frozen=True)
class Ran:
    """One attempt run by :func:`run_due` or :func:`eager`."""

    pk: int
    name: str  # the task function's dotted path
    status: int  # DONE, ERROR, or WAITING when a retry is due later
    result: object  # the return value when DONE, else None
    error: str  # the error message when it failed, else ''
    traceback: str
    using: str | None = None

    @property
    def task(self) -> DelayedTask[Any]:
        """The :class:`~autotask.tasks.DelayedTask` handle of this task."""
        return DelayedTask(self.pk, using=self.using)

    def __repr__(self) -> str:
        outcome = repr(self.result) if self.status == DONE else self.error
        return f"<Ran {self.name} #{self.pk} {STATUS_NAMES.get(self.status, self.status)}: {outcome}>"


def _worker_id() -> str:
    return f"testing:{os.getpid()}:{threading.get_ident()}"


def _run(task: ClaimedTask, using: str, worker_id: str) -> Ran:
    """Execute a claimed task in a savepoint and write its outcome; return a :class:`Ran`."""
    ops = get_ops(using)
    with transaction.atomic(using=using):
        # The task shares the test's connection and transaction: they stay open.
        reports.consume(worker_id)
        try:
            outcome = executor.execute(task, worker_id, release_connections=False)
        finally:
            taken = reports.take(worker_id, {task.id})
            reports.release(worker_id)
        if outcome.status != DONE:
            transaction.set_rollback(True, using=using)
    ops.write_reports(worker_id, taken)
    if workflows.is_step(task.options) and outcome.status != WAITING:
        outcome.workflow = task.options["workflow"]
        workflows.finish_steps(ops, worker_id, [outcome])
    else:
        ops.finish(worker_id, [outcome])
    result = None
    if outcome.status == DONE and outcome.result is not None:
        result = serialization.decode_value(outcome.result)
    return Ran(
        task.id, task.function, outcome.status, result, outcome.error_message, outcome.traceback, using
    )


def run_due(
    queues: Iterable[str] | None = None,
    *,
    now: datetime | None = None,
    using: str | None = None,
    max_tasks: int = MAX_TASKS,
) -> list[Ran]:
    """Run every due task here and now, in the order a worker would; return what ran.

    Tasks the running ones enqueue run too when due.  Periodic and cron
    occurrences due at ``now`` are enqueued first.  ``now`` (default: the
    current time) lets a test run tasks scheduled for later:
    ``run_due(now=timezone.now() + timedelta(hours=1))``.  A retry is due
    after its backoff delay, so it runs in a later call.  Raise RuntimeError
    when more than ``max_tasks`` ran (a task that keeps enqueueing itself).
    """
    using = using or conf.DATABASE
    fixed_now = now
    ops = get_ops(using)
    worker_id = _worker_id()
    ran: list[Ran] = []
    _tick(using, fixed_now or timezone.now())
    while True:
        at = fixed_now or timezone.now()
        flow.admit(ops, at)  # tasks held for a slot of their concurrency key, as a worker's sweep
        claimed = ops.claim(worker_id, list(queues) if queues else None, 1, at + LEASE, at)
        if not claimed:
            return ran
        if len(ran) >= max_tasks:
            raise RuntimeError(
                f"run_due ran {max_tasks} tasks and more are still due: does a task keep "
                "enqueueing itself? Pass max_tasks= to allow more."
            )
        ran.append(_run(claimed[0], using, worker_id))


def _tick(using: str, now: datetime) -> None:
    scheduling.tick(using, now)


def enqueued(
    func: Callable[..., Any] | str, *, status: int | None = None, using: str | None = None
) -> list[Any]:
    """Return the calls stored for ``func`` as :data:`unittest.mock.call` objects, oldest first.

    ``func`` is a task, its function or its dotted path.  ``status`` narrows
    to tasks in that state (e.g. ``WAITING``: not run yet); by default every
    stored call counts, run or not.  Compare with ``call(...)``:
    ``assert enqueued(send_mail) == [call("ada@example.com", subject="Hi")]``.
    """
    name = func if isinstance(func, str) else getattr(func, "name", None) or function_path(func)
    rows = TaskQueue.objects.using(using or conf.DATABASE).filter(function=name)
    if status is not None:
        rows = rows.filter(status=status)
    calls = []
    for text in rows.order_by("id").values_list("args", flat=True):
        args, kwargs = serialization.decode_call(text)
        calls.append(mock.call(*args, **kwargs))
    return calls


class eager(contextlib.ContextDecorator):  # lower case: used like a function, ``with eager():``
    """Run tasks the moment they are enqueued, in this process, before the call returns.

    The call still returns a :class:`~autotask.tasks.DelayedTask`, whose
    ``result`` is already there.  ``delay`` is ignored and retries run at once
    (without backoff).  With ``raise_errors=True`` a task that ends in ERROR
    raises :class:`TaskFailed` from the call that enqueued it.  ``ran`` lists
    every attempt run inside the block.  Usable as a decorator too.
    """

    def __init__(self, raise_errors: bool = False) -> None:
        self.raise_errors = raise_errors
        self.ran: list[Ran] = []
        self._uid = ("autotask.testing.eager", id(self))

    def __enter__(self) -> Self:
        # Nested blocks each add a receiver; the claim lets only one run a task.
        task_enqueued.connect(self._on_enqueued, weak=False, dispatch_uid=self._uid)
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        task_enqueued.disconnect(dispatch_uid=self._uid)
        return False

    def _on_enqueued(self, sender: object, task: DelayedTask[Any], **kwargs: Any) -> None:
        while True:
            claimed = _claim_one(task.pk, task.using)
            if claimed is None:
                return  # already run (or cancelled) by someone else
            ran = _run(claimed, task.using, _worker_id())
            self.ran.append(ran)
            if ran.status != WAITING:
                break
        if self.raise_errors and ran.status == ERROR:
            raise TaskFailed(f"{ran.name} #{ran.pk} failed: {ran.error}\n\n{ran.traceback}")


def _claim_one(pk: int, using: str) -> ClaimedTask | None:
    """Claim the task ``pk`` for this process whatever its scheduled time; None if not waiting."""
    # Not the driver's claim: that takes the due tasks of some queues in run
    # order, while eager() must take exactly the task just enqueued, before its
    # scheduled time (``delay`` is ignored) and leaving every other due task
    # alone.  It sets what the driver's claim sets, and reads the same columns.
    now = timezone.now()
    # A task held for a slot of its concurrency key runs too: eager() runs one task at a time.
    rows = TaskQueue.objects.using(using).filter(pk=pk, status__in=(WAITING, HELD))
    if not rows.update(
        status=RUNNING,
        worker_id=_worker_id(),
        started_at=now,
        lease_expires_at=now + LEASE,
        attempts=F("attempts") + 1,
    ):
        return None
    values = TaskQueue.objects.using(using).filter(pk=pk).values(*CLAIM_COLUMNS).get()
    return ClaimedTask(**values)
