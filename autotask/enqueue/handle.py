"""The handle on a stored task: every property reads the current row."""

import time
from typing import Any, Generic, TypeVar

from django.utils import timezone

from .. import serialization
from ..conf import conf
from ..task import DONE, FINISHED, STATUS_NAMES

R = TypeVar("R")

_FIELDS = ("status", "result", "error_message", "traceback", "attempts")


class StatusWords:
    """``status_name`` and ``ready`` of a handle, from its ``status`` (None: the row is gone)."""

    status: Any  # a property of the handle: the current row's status

    @property
    def status_name(self) -> str | None:
        """The status as a word (``"waiting"``, ``"done"``, …); None when the row is gone."""
        status = self.status
        return None if status is None else STATUS_NAMES.get(status)

    @property
    def ready(self) -> bool | None:
        """True once finished (DONE, ERROR, CANCELLED), False before, None when gone."""
        status = self.status
        return None if status is None else status in FINISHED


class DelayedTask(StatusWords, Generic[R]):
    """A handle on a stored task; every property reads the current row.

    A task whose row is gone (deleted after its ttl) reads as ``status``
    None, ``ready`` None and ``result`` None; nothing raises.  Generic over
    the task function's return type ``R``: ``result`` is ``R | None``.

    ``duplicate`` is True on the handle an enqueue of a unique task returned
    when its key was taken: the handle is then the existing task's, and the
    call was not stored.
    """

    duplicate: bool = False  # set on an instance: that enqueue found its unique key taken

    def __init__(self, pk: int, using: str | None = None) -> None:
        self.pk = pk
        self.using = using or conf.DATABASE

    def __repr__(self) -> str:
        return f"<DelayedTask {self.pk}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DelayedTask) and (other.pk, other.using) == (self.pk, self.using)

    def __hash__(self) -> int:
        return hash((self.pk, self.using))

    def _row(self, *fields: str) -> dict[str, Any] | None:
        # Not at the top: the decorators import this module and must stay importable
        # without 'autotask' in INSTALLED_APPS, so that check autotask.E012 can say so.
        from ..models import TaskQueue

        return TaskQueue.objects.using(self.using).filter(pk=self.pk).values(*fields).first()

    def _field(self, name: str, default: Any = None) -> Any:
        row = self._row(name)
        return default if row is None else row[name]

    @property
    def status(self) -> int | None:
        """WAITING, RUNNING, DONE, ERROR or CANCELLED; None when the row is gone."""
        return self._field("status")

    @property
    def result(self) -> R | None:
        """The return value once DONE, else None."""
        row = self._row("status", "result")
        if row is None or row["status"] != DONE or row["result"] is None:
            return None
        return serialization.decode_value(row["result"])

    @property
    def error_message(self) -> str:
        """``str(exception)`` of the last failure, '' if none."""
        return self._field("error_message", "")

    @property
    def traceback(self) -> str:
        """The formatted traceback of the last failure, '' if none."""
        return self._field("traceback", "")

    @property
    def progress(self) -> dict[str, Any] | None:
        """The progress the task last reported (``done``, ``total``, ``message``, ``at``), or None.

        Written by its worker a few times a second at most while it runs, and
        once more when it ends; a retry keeps it until the new attempt reports.
        """
        return self._field("progress")

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata the task set (``current_task().set_metadata``); {} if none."""
        return self._field("metadata") or {}

    @property
    def attempts(self) -> int:
        """How many times a worker has started this task."""
        return self._field("attempts", 0)

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> bool:
        """Block until the task has finished; return False if ``timeout`` ran out first.

        A task whose row is gone counts as finished.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.ready is not False:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval if deadline is None else max(0, min(interval, deadline - time.monotonic())))

    def stop(self) -> bool:
        """Stop the task, whether it waits or runs; return True if it was cancelled or asked to stop.

        A waiting task is cancelled at once (as :meth:`cancel` does).  A
        running task is asked to stop: its worker (any worker, on any
        machine) stops it within about a second and records it CANCELLED,
        never retried.  An ``async def`` task is cancelled, a task in a child
        process is interrupted (the child is ended if it does not stop), and
        a sync task in a worker thread stops when it checks
        ``autotask.current_task().should_stop``.  A task that finishes first
        keeps its outcome.  Poll :attr:`status` (or :meth:`wait`) for the end.
        """
        from ..db import notify_stop
        from ..models import TaskQueue  # not at the top: see _row

        rows = TaskQueue.objects.using(self.using).filter(pk=self.pk)
        now = timezone.now()
        # Twice: a waiting row may be claimed between the two statements.
        for _ in range(2):
            if rows.cancel_waiting(now):
                return True
            if rows.stop_running(now):
                notify_stop(self.using)
                return True
        return False

    def cancel(self) -> bool:
        """Cancel the task if it has not started; return True if it was cancelled."""
        from ..models import TaskQueue  # not at the top: see _row

        return TaskQueue.objects.using(self.using).filter(pk=self.pk).cancel_waiting(timezone.now()) == 1
