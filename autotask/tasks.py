"""The decorators and :class:`DelayedTask` (the original import path)."""

import functools
import inspect

from . import enqueue as _enqueue
from .conf import conf
from .definitions import registry
from .definitions.options import FROM_SETTING, TaskOptions, function_path
from .definitions.schedules import CronFactory, PeriodicFactory
from .enqueue.handle import DelayedTask
from .task import CANCELLED, DONE, ERROR, RUNNING, WAITING

__all__ = [
    "CANCELLED",
    "DONE",
    "ERROR",
    "RUNNING",
    "WAITING",
    "Call",
    "DelayedTask",
    "Task",
    "cron_task",
    "delayed_task",
    "periodic_task",
]


class Call:
    """One call's arguments, for :meth:`Task.enqueue_many`."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return f"Call(*{self.args!r}, **{self.kwargs!r})"


class Task:
    """A function decorated with :func:`delayed_task`: calling it stores a task."""

    def __init__(self, func, options, name=None, using=None):
        self.func = func
        self.options = options
        self.name = name or function_path(func)
        self.database = using
        functools.update_wrapper(self, func)

    def __repr__(self):
        return f"<Task {self.name}>"

    def __call__(self, *args, **kwargs):
        """Store this call and return a :class:`DelayedTask` at once."""
        pk = _enqueue.enqueue(self.name, args, kwargs, self.options, using=self.database, sender=self)
        return DelayedTask(pk, using=self.database)

    def __get__(self, instance, owner):
        # Tasks are plain functions; as class attributes they stay unbound
        # (a worker could not rebuild the instance).
        return self

    def using(self, *, database=None, **overrides):
        """Return this task with options changed for the calls made through it.

        ``send_mail.using(delay=60, queue="mail")(to, body)``
        """
        options = TaskOptions.build("using", overrides, base=self.options)
        registry.note_timeout(self.name, self.func, options)
        bound = Task(self.func, options, name=self.name, using=database or self.database)
        return bound

    def enqueue_many(self, calls):
        """Store many calls in one statement; return their :class:`DelayedTask` handles.

        Each item is a :class:`Call` or a tuple of positional arguments.
        """
        pairs = [_call_pair(index, call) for index, call in enumerate(calls)]
        alias = self.database or conf.DATABASE  # once, not once per handle
        ids = _enqueue.enqueue_many(self.name, pairs, self.options, using=alias, sender=self)
        return [DelayedTask(pk, using=alias) for pk in ids]

    def run(self, *args, **kwargs):
        """Call the function here and now, synchronously."""
        return self.func(*args, **kwargs)


def _call_pair(index, call):
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


def _keywords_named(decorator):
    """Wrap ``decorator`` so that an unknown keyword's TypeError names the accepted ones.

    The wrapper keeps the decorator's real signature (``inspect.signature``,
    ``help()`` and IDEs show it).
    """
    signature = inspect.signature(decorator)
    name = decorator.__name__

    @functools.wraps(decorator)
    def wrapper(*args, **kwargs):
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown:
            raise TypeError(
                f"{name}() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"it accepts {', '.join(signature.parameters)}"
            )
        return decorator(*args, **kwargs)

    return wrapper


def _decorator(caller, options, make):
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


@_keywords_named
def delayed_task(
    delay=0,
    retries=0,
    ttl=300,
    *,
    queue=None,
    priority=0,
    timeout=None,
    retry_delay=None,
    backoff=None,
    max_retry_delay=None,
    failed_ttl=FROM_SETTING,
):
    """Make calls to the decorated function store a task and return a DelayedTask.

    ``@delayed_task``, ``@delayed_task()`` and ``@delayed_task(delay=0,
    retries=0, ttl=300, queue=None, priority=0, timeout=None, retry_delay=None,
    backoff=None, max_retry_delay=None,
    failed_ttl=AUTOTASK_FAILED_TTL)``.  With ``AUTOTASK_IS_ACTIVE`` false
    the function is returned unchanged and calls run synchronously.
    """
    return _decorator("delayed_task", dict(locals()), _DelayedFactory)


class _DelayedFactory:
    POSITIONAL = ("delay", "retries", "ttl")

    def __init__(self, caller, options):
        self.options = TaskOptions.build(caller, options)

    def __call__(self, func):
        if not conf.IS_ACTIVE:
            registry.declare_inactive(func, lambda name: Task(func, self.options, name=name))
            return func
        task = Task(func, self.options)
        registry.register(task)
        return task


@_keywords_named
def periodic_task(
    seconds=3600,
    start_now=False,
    *,
    queue=None,
    priority=0,
    retries=0,
    ttl=300,
    timeout=None,
    retry_delay=None,
    backoff=None,
    max_retry_delay=None,
    failed_ttl=FROM_SETTING,
):
    """Run the decorated function every ``seconds`` (fixed rate).

    ``@periodic_task(seconds=3600, start_now=False)``.  Calling the function
    from code does nothing and returns None.
    """
    options = dict(locals())  # first: the arguments by name, nothing else
    return _decorator("periodic_task", options, PeriodicFactory)


@_keywords_named
def cron_task(
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
    retry_delay=None,
    backoff=None,
    max_retry_delay=None,
    failed_ttl=FROM_SETTING,
):
    """Run the decorated function on a cron schedule.

    ``@cron_task(cron="*/15 9-17 * * MON-FRI")`` in the standard field order,
    or the original's ``crontab="minutes hours dow months dom"`` and keyword
    lists ``minutes=, hours=, dow=, months=, dom=`` (dow 0 = Monday).
    """
    options = dict(locals())  # first: the arguments by name, nothing else
    return _decorator("cron_task", options, CronFactory)
