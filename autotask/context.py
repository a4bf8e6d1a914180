"""The task running now, as task code sees it: :func:`autotask.current_task`."""

import contextvars
import logging
import threading
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


__all__ = ["CurrentTask", "current_task", "running"]
