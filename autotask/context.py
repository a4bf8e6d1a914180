"""The task running now, as task code sees it: :func:`autotask.current_task`."""

import contextvars
import json
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from .exceptions import TaskStopped

logger = logging.getLogger("autotask")


@dataclass
class CurrentTask:
    """What a running task may know about itself (and, later, tell its worker).

    One object per attempt, made by the worker before the task's function is
    called and dropped when it returns.  ``options`` is the task's stored
    options (a copy: changing it changes nothing stored).
    """

    id: int
    name: str  # the task function's dotted path
    attempt: int  # 1 for the first run, 2 for the first retry, ...
    max_attempts: int
    queue: str
    options: dict = field(default_factory=dict)
    worker_id: str = ""
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _on_stop: list = field(default_factory=list, repr=False)
    # Progress and metadata: the latest values, kept here; the worker writes
    # them (see Reports) at most a few times a second, and once more before
    # the outcome.  ``_dirty``: changed since the last write.  Class defaults,
    # not fields: a task that never reports pays nothing for them.
    _progress = None
    _metadata = None
    _dirty = False

    # -- progress and metadata: kept here, written by the worker --

    def set_progress(self, done, total=None, message=""):
        """Report how far the task is: ``done`` of ``total`` (None: unknown), with a short message.

        Cheap enough for a tight loop: it keeps the latest value; the worker
        writes it to the task's row a few times a second at most, and once
        more when the task ends.
        """
        if (
            type(done) is not int
            or done < 0
            or (total is not None and (type(total) is not int or total < 0))
            or type(message) is not str
        ):
            _check_progress(done, total, message)  # floats and int subclasses pass; bad values raise
        self._progress = (done, total, message)  # made a dict when taken: this is the tight loop's cost
        if not self._dirty:
            self._changed()

    @property
    def progress(self):
        """The progress last set by this attempt (a dict: done, total, message), or None."""
        return None if self._progress is None else _progress_dict(self._progress)

    @property
    def metadata(self):
        """The metadata set by this attempt (a copy: change it through :meth:`set_metadata`)."""
        return dict(self._metadata or {})

    def set_metadata(self, values=None, /, **more):
        """Merge ``values`` and ``more`` into the task's metadata (small JSON: str keys, JSON values).

        The whole dict is written to the row, like the progress, a few times a
        second at most.  A value JSON cannot hold raises TypeError here.
        """
        merged = {**(self._metadata or {}), **(values or {}), **more}
        try:
            json.dumps(merged, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadata must be JSON (str keys; str, numbers, lists, dicts): {exc}") from None
        if any(type(key) is not str for key in merged):
            raise TypeError("metadata keys must be strings")
        self._metadata = merged
        if not self._dirty:
            self._changed()

    def _changed(self):
        self._dirty = True
        reports.add(self)

    def take_report(self):
        """(progress, metadata) to write, or None when nothing changed since the last take."""
        if not self._dirty:
            return None
        # Cleared before the values are read: a set_* racing with this either
        # lands in what is read here or marks the task changed again.
        self._dirty = False
        progress = self._progress
        return None if progress is None else {**_progress_dict(progress), "at": time.time()}, self._metadata

    # -- stopping: asked from any thread, honoured by the task or its runner --

    @property
    def should_stop(self) -> bool:
        """True once someone asked this task to stop: return, or call :meth:`raise_if_stopped`."""
        return self._stop.is_set()

    def raise_if_stopped(self) -> None:
        """Raise :class:`~autotask.exceptions.TaskStopped` when a stop was asked for."""
        if self._stop.is_set():
            raise TaskStopped(f"task {self.name} #{self.id} was asked to stop")

    def on_stop(self, callback) -> None:
        """Call ``callback()`` when a stop is asked for (at once if it already was).

        How a task's runner stops what does not check :attr:`should_stop`:
        an event loop cancels the coroutine, a process pool ends the child.
        """
        self._on_stop.append(callback)
        if self._stop.is_set():
            self._call(callback)

    def request_stop(self) -> None:
        """Ask the task to stop (the worker calls this; idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        for callback in list(self._on_stop):
            self._call(callback)

    def _call(self, callback):
        try:
            callback()
        except Exception:
            logger.exception("stopping task %s #%s failed", self.name, self.id)

    @classmethod
    def of(cls, task, worker_id=""):
        """The CurrentTask of a claimed task (``autotask.db.base.ClaimedTask``)."""
        return cls(
            id=task.id,
            name=task.function,
            attempt=task.attempts,
            max_attempts=task.max_attempts,
            queue=task.queue,
            options=dict(task.options),
            worker_id=worker_id,
        )


def _progress_dict(progress):
    done, total, message = progress
    return {"done": done, "total": total, "message": message}


def _check_progress(done, total, message):
    """Raise TypeError or ValueError unless ``set_progress(done, total, message)`` is valid."""
    if type(message) is not str:
        raise TypeError(f"set_progress(): message must be a str, not {type(message).__name__}")
    for name, value in (("done", done), ("total", total)):
        if value is None and name == "total":
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"set_progress(): {name} must be a number, not {type(value).__name__}")
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"set_progress(): {name} must be a finite number >= 0, got {value!r}")


class Reports:
    """The running tasks whose progress or metadata changed, for their worker to write.

    Task threads add to it (:meth:`CurrentTask.set_progress`); a worker's
    loop, registered with :meth:`consume`, takes its own tasks' reports
    (:meth:`take`) and writes them in one batch.  Its ``wake`` is called
    (from the task's thread) when a task is added to an empty set.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = {}  # task id -> CurrentTask
        self.on_first = {}  # worker id -> callable: the workers whose reports are written
        self.unwritten = set()  # worker ids whose reports were dropped (warned once)

    def add(self, current):
        wake = self.on_first.get(current.worker_id)
        if wake is None:
            # No worker of this process writes this task's reports (a task run
            # some other way): say so once, rather than keep them for nobody.
            if current.worker_id not in self.unwritten:
                self.unwritten.add(current.worker_id)
                logger.warning(
                    "task %s #%s reported progress or metadata, but no worker in this process writes "
                    "the reports of worker %r: they are not stored",
                    current.name,
                    current.id,
                    current.worker_id,
                )
            return
        with self.lock:
            first = not self.changed
            self.changed[current.id] = current
        if first:
            wake()

    def consume(self, worker_id, wake=None):
        """``worker_id``'s reports are taken and written here (``wake``: called on a first report)."""
        self.on_first[worker_id] = wake or _nothing

    def release(self, worker_id):
        """Stop keeping ``worker_id``'s reports; forget those not taken."""
        self.on_first.pop(worker_id, None)
        with self.lock:
            for pk in [pk for pk, c in self.changed.items() if c.worker_id == worker_id]:
                del self.changed[pk]

    def take(self, worker_id, only=None):
        """{id: (progress, metadata)} of ``worker_id``'s changed tasks (``only``: these ids); forgets them."""
        with self.lock:
            mine = [
                c
                for c in self.changed.values()
                if c.worker_id == worker_id and (only is None or c.id in only)
            ]
            for current in mine:
                del self.changed[current.id]
        taken = {}
        for current in mine:
            report = current.take_report()
            if report is not None:
                taken[current.id] = report
        return taken


def _nothing():
    pass


reports = Reports()

_current: contextvars.ContextVar[CurrentTask | None] = contextvars.ContextVar(
    "autotask_current_task", default=None
)


def current_task() -> CurrentTask | None:
    """The task running in this thread or coroutine; None outside a task.

    Coroutines an ``async def`` task starts see it too (asyncio copies the
    context into each one).
    """
    return _current.get()


@contextmanager
def running(current):
    """Make ``current`` the :func:`current_task` for the block."""
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


__all__ = ["CurrentTask", "Reports", "current_task", "reports", "running"]
