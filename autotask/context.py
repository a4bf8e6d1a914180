"""The task running now, as task code sees it: :func:`autotask.current_task`."""

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field


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
