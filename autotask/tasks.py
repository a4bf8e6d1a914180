"""The decorators and :class:`DelayedTask` (the original import path)."""

import functools
import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypedDict, TypeVar, Unpack, cast, overload

from . import enqueue as _enqueue
from .conf import conf
from .definitions import limits, registry, unique
from .definitions.options import FROM_SETTING, TaskOptions, function_path
from .definitions.schedules import CronFactory, PeriodicFactory, ScheduledFunction
from .enqueue.handle import DelayedTask
from .enqueue.workflows import Group, Step, Workflow, WorkflowHandle, chain, group
from .task import CANCELLED, DONE, ERROR, RUNNING, WAITING

P = ParamSpec("P")
R = TypeVar("R")
_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "CANCELLED",
    "DONE",
    "ERROR",
    "RUNNING",
    "WAITING",
    "Call",
    "DelayedTask",
    "Group",
    "Step",
    "Task",
    "Workflow",
    "WorkflowHandle",
    "chain",
    "cron_task",
    "delayed_task",
    "group",
    "periodic_task",
]


class Call:
    """One call's arguments, for :meth:`Task.enqueue_many`."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __repr__(self) -> str:
        return f"Call(*{self.args!r}, **{self.kwargs!r})"


class TaskOverrides(TypedDict, total=False):
    """The options :meth:`Task.using` changes (those of :func:`delayed_task`)."""

    delay: float
    retries: int
    ttl: float
    queue: str | None
    priority: int
    timeout: float | None
    soft_timeout: float | None
    isolated: bool
    retry_delay: float | None
    backoff: float | None
    max_retry_delay: float | None
    failed_ttl: float | None
    unique: bool | str | float | timedelta | None
    unique_key: Callable[..., str] | str | None
    concurrency_limit: int | None
    concurrency_key: Callable[..., str] | str | None
    rate_limit: str | None
    rate_key: Callable[..., str] | str | None


class Task(Generic[P, R]):
    """A function decorated with :func:`delayed_task`: calling it stores a task.

    Generic over the function's parameters and return type: calling
    ``Task[P, R]`` takes the function's arguments and returns a
    :class:`DelayedTask` whose ``result`` is ``R | None``.
    """

    def __init__(
        self, func: Callable[P, R], options: TaskOptions, name: str | None = None, using: str | None = None
    ) -> None:
        self.func = func
        self.options = options
        self.name = name or function_path(func)
        self.database = using
        unique.check_template_fields(func, options.unique_key)
        limits.check_template_fields(func, options)
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> DelayedTask[R]:
        """Store this call and return a :class:`DelayedTask` at once.

        For a unique task whose key is taken, the handle is the existing
        task's, with ``duplicate`` True.
        """
        pk, duplicate = _enqueue.enqueue_call(
            self.name, args, kwargs, self.options, using=self.database, sender=self, func=self.func
        )
        handle: DelayedTask[R] = DelayedTask(pk, using=self.database)
        if duplicate:
            handle.duplicate = True
        return handle

    def __get__(self, instance: object, owner: type | None = None) -> "Task[P, R]":
        # Tasks are plain functions; as class attributes they stay unbound
        # (a worker could not rebuild the instance).
        return self

    def using(self, *, database: str | None = None, **overrides: Unpack[TaskOverrides]) -> "Task[P, R]":
        """Return this task with options changed for the calls made through it.

        ``send_mail.using(delay=60, queue="mail")(to, body)``
        """
        options = TaskOptions.build("using", overrides, base=self.options)
        registry.note_timeout(self.name, self.func, options)
        bound: Task[P, R] = Task(self.func, options, name=self.name, using=database or self.database)
        return bound

    def enqueue_many(self, calls: Iterable[Call | tuple[Any, ...]]) -> list[DelayedTask[R]]:
        """Store many calls in one statement; return their :class:`DelayedTask` handles.

        Each item is a :class:`Call` or a tuple of positional arguments.  For
        a unique task, a call whose key is taken (by a stored task or an
        earlier call of the list) gets that task's handle, with ``duplicate`` True.
        """
        pairs = [_call_pair(index, call) for index, call in enumerate(calls)]
        alias = self.database or conf.DATABASE  # once, not once per handle
        ids, duplicates = _enqueue.enqueue_calls(
            self.name, pairs, self.options, using=alias, sender=self, func=self.func
        )
        handles: list[DelayedTask[R]] = [DelayedTask(pk, using=alias) for pk in ids]
        for handle, duplicate in zip(handles, duplicates or (), strict=False):
            if duplicate:
                handle.duplicate = True
        return handles

    def step(self, *args: Any, **kwargs: Any) -> Step:
        """This call as a step of a workflow (:func:`chain`, :func:`group`); nothing is stored yet.

        A step after a workflow's first stage gets the previous stage's result
        as its first argument, before ``args``.
        """
        return Step(self.name, self.func, self.options, args, kwargs, self.database)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function here and now, synchronously."""
        return self.func(*args, **kwargs)


def _call_pair(index: int, call: Call | tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) of one item given to :meth:`Task.enqueue_many`."""
    if isinstance(call, Call):
        return call.args, call.kwargs
    try:
        return tuple(call), {}
    except TypeError:
        raise TypeError(
            f"calls[{index}] of enqueue_many must be a Call or a tuple of positional arguments, "
            f"not {type(call).__name__}"
        ) from None


def _keywords_named(decorator: _F) -> _F:
    """Wrap ``decorator`` so that an unknown keyword's TypeError names the accepted ones.

    The wrapper keeps the decorator's real signature (``inspect.signature``,
    ``help()`` and IDEs show it).
    """
    signature = inspect.signature(decorator)
    name = decorator.__name__

    @functools.wraps(decorator)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown:
            raise TypeError(
                f"{name}() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"it accepts {', '.join(signature.parameters)}"
            )
        return decorator(*args, **kwargs)

    return cast(_F, wrapper)


def _decorator(caller: str, options: dict[str, Any], make: Any) -> Any:
    """Shared shape of the decorators: usable with and without parentheses.

    ``options`` are the decorator's arguments by name; the first positional
    one is the function itself when the decorator is used bare (``@delayed_task``).
    """
    first = make.POSITIONAL[0]
    func = None
    if callable(options[first]):
        func = options.pop(first)
    build = make(caller, options)  # validate now, even when inactive
    if func is None:
        return build
    return build(func)


# What a type checker reads: bare (``@delayed_task``) or called with options.
# The implementation below takes anything and validates it when it runs
# (InvalidTaskOptions); with AUTOTASK_IS_ACTIVE false it returns the function
# itself, which a checker does not see.
@overload
def delayed_task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def delayed_task(
    delay: float = 0,
    retries: int = 0,
    ttl: float = 300,
    *,
    queue: str | None = None,
    priority: int = 0,
    timeout: float | None = None,
    soft_timeout: float | None = None,
    isolated: bool = False,
    retry_delay: float | None = None,
    backoff: float | None = None,
    max_retry_delay: float | None = None,
    failed_ttl: float | None = ...,
    unique: bool | str | float | timedelta | None = None,
    unique_key: Callable[..., str] | str | None = None,
    concurrency_limit: int | None = None,
    concurrency_key: Callable[..., str] | str | None = None,
    rate_limit: str | None = None,
    rate_key: Callable[..., str] | str | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
@_keywords_named
def delayed_task(  # type: ignore[no-untyped-def]  # the overloads above give the types
    delay=0,
    retries=0,
    ttl=300,
    *,
    queue=None,
    priority=0,
    timeout=None,
    soft_timeout=None,
    isolated=False,
    retry_delay=None,
    backoff=None,
    max_retry_delay=None,
    failed_ttl=FROM_SETTING,
    unique=None,
    unique_key=None,
    concurrency_limit=None,
    concurrency_key=None,
    rate_limit=None,
    rate_key=None,
):
    """Make calls to the decorated function store a task and return a DelayedTask.

    ``@delayed_task``, ``@delayed_task()`` and ``@delayed_task(delay=0,
    retries=0, ttl=300, queue=None, priority=0, timeout=None, retry_delay=None,
    backoff=None, max_retry_delay=None,
    failed_ttl=AUTOTASK_FAILED_TTL, unique=None, unique_key=None)``.  With ``AUTOTASK_IS_ACTIVE`` false
    the function is returned unchanged and calls run synchronously.
    """
    return _decorator("delayed_task", dict(locals()), _DelayedFactory)


class _DelayedFactory:
    POSITIONAL = ("delay", "retries", "ttl")

    def __init__(self, caller: str, options: dict[str, Any]) -> None:
        self.options = TaskOptions.build(caller, options)

    def __call__(self, func: Callable[P, R]) -> Task[P, R] | Callable[P, R]:
        if not conf.IS_ACTIVE:
            registry.declare_inactive(func, lambda name: Task(func, self.options, name=name))
            return func
        task = Task(func, self.options)
        registry.register(task)
        return task


@overload
def periodic_task(func: Callable[P, R], /) -> ScheduledFunction[P, R]: ...
@overload
def periodic_task(
    seconds: float = 3600,
    start_now: bool = False,
    *,
    queue: str | None = None,
    priority: int = 0,
    retries: int = 0,
    ttl: float = 300,
    timeout: float | None = None,
    soft_timeout: float | None = None,
    isolated: bool = False,
    retry_delay: float | None = None,
    backoff: float | None = None,
    max_retry_delay: float | None = None,
    failed_ttl: float | None = ...,
    unique: bool | str | float | timedelta | None = None,
    unique_key: Callable[..., str] | str | None = None,
    concurrency_limit: int | None = None,
    concurrency_key: Callable[..., str] | str | None = None,
    rate_limit: str | None = None,
    rate_key: Callable[..., str] | str | None = None,
) -> Callable[[Callable[P, R]], ScheduledFunction[P, R]]: ...
@_keywords_named
def periodic_task(  # type: ignore[no-untyped-def]  # the overloads above give the types
    seconds=3600,
    start_now=False,
    *,
    queue=None,
    priority=0,
    retries=0,
    ttl=300,
    timeout=None,
    soft_timeout=None,
    isolated=False,
    retry_delay=None,
    backoff=None,
    max_retry_delay=None,
    failed_ttl=FROM_SETTING,
    unique=None,
    unique_key=None,
    concurrency_limit=None,
    concurrency_key=None,
    rate_limit=None,
    rate_key=None,
):
    """Run the decorated function every ``seconds`` (fixed rate).

    ``@periodic_task(seconds=3600, start_now=False)``.  Calling the function
    from code does nothing and returns None.  With ``unique``, an occurrence
    whose previous run still holds the key is skipped.
    """
    options = dict(locals())  # first: the arguments by name, nothing else
    return _decorator("periodic_task", options, PeriodicFactory)


_CronField = int | str | Iterable[int] | None


@overload
def cron_task(func: Callable[P, R], /) -> ScheduledFunction[P, R]: ...
@overload
def cron_task(
    minutes: _CronField = None,
    hours: _CronField = None,
    dow: _CronField = None,
    months: _CronField = None,
    dom: _CronField = None,
    crontab: str | None = None,
    *,
    cron: str | None = None,
    timezone: str | None = None,
    queue: str | None = None,
    priority: int = 0,
    retries: int = 0,
    ttl: float = 300,
    timeout: float | None = None,
    soft_timeout: float | None = None,
    isolated: bool = False,
    retry_delay: float | None = None,
    backoff: float | None = None,
    max_retry_delay: float | None = None,
    failed_ttl: float | None = ...,
    unique: bool | str | float | timedelta | None = None,
    unique_key: Callable[..., str] | str | None = None,
    concurrency_limit: int | None = None,
    concurrency_key: Callable[..., str] | str | None = None,
    rate_limit: str | None = None,
    rate_key: Callable[..., str] | str | None = None,
) -> Callable[[Callable[P, R]], ScheduledFunction[P, R]]: ...
@_keywords_named
def cron_task(  # type: ignore[no-untyped-def]  # the overloads above give the types
    minutes=None,
    hours=None,
    dow=None,
    months=None,
    dom=None,
    crontab=None,
    *,
    cron=None,
    timezone=None,
    queue=None,
    priority=0,
    retries=0,
    ttl=300,
    timeout=None,
    soft_timeout=None,
    isolated=False,
    retry_delay=None,
    backoff=None,
    max_retry_delay=None,
    failed_ttl=FROM_SETTING,
    unique=None,
    unique_key=None,
    concurrency_limit=None,
    concurrency_key=None,
    rate_limit=None,
    rate_key=None,
):
    """Run the decorated function on a cron schedule.

    ``@cron_task(cron="*/15 9-17 * * MON-FRI")`` in the standard field order,
    or the original's ``crontab="minutes hours dow months dom"`` and keyword
    lists ``minutes=, hours=, dow=, months=, dom=`` (dow 0 = Monday).
    """
    options = dict(locals())  # first: the arguments by name, nothing else
    return _decorator("cron_task", options, CronFactory)
