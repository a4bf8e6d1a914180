"""Periodic and cron tasks as the code declares them: the specs, the decorators' factories.

The declarations of this process are kept here by name; the worker writes
them to the database and fires them (:mod:`autotask.maintenance.scheduling`).
"""

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar

from django.conf import settings

from ..conf import conf
from ..cron import CronExpression, resolve_timezone
from ..exceptions import InvalidTaskOptions
from . import registry, unique
from .options import TaskOptions, function_path

P = ParamSpec("P")
R = TypeVar("R")

RUN_OPTIONS = tuple(name for name in TaskOptions.NAMES if name != "delay")  # a run's options

_schedules: dict[str, "ScheduleSpec"] = {}  # name -> ScheduleSpec, filled by the decorators at import time
_synced: set[str] = set()  # database aliases this process has written its schedules to
_unstored: set[str] = set()  # names of schedules declared here that this process has not stored yet
# Called after a schedule is declared: autotask.supervisor.schedules stores it
# from the declaring process (it adds itself here; it writes rows, a layer up).
declared_hooks: list[Callable[..., Any]] = []


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as the code declares it."""

    name: str
    kind: str  # "periodic" or "cron"
    seconds: float | None = None
    start_now: bool = False
    cron: CronExpression | None = None
    timezone: str = ""  # cron only; "" means settings.TIME_ZONE
    options: TaskOptions = field(default_factory=TaskOptions)

    @property
    def spec(self):
        return format(self.seconds, "g") if self.kind == "periodic" else self.cron.expression

    def first_run(self, now):
        if self.kind == "periodic":
            return now if self.start_now else now + timedelta(seconds=self.seconds)
        return self.next_after(now)

    def next_after(self, now, previous=None):
        """Return the first occurrence strictly after ``now`` (aware UTC datetimes)."""
        if self.kind == "periodic":
            # Fixed rate: keep the phase of the previous occurrence.
            base = previous or now
            steps = max(1, int((now - base).total_seconds() // self.seconds) + 1)
            return base + timedelta(seconds=self.seconds * steps)
        return self.cron.next_after(now, self.tzinfo())

    def tzinfo(self):
        return resolve_timezone(self.timezone or settings.TIME_ZONE)


class ScheduledFunction(Generic[P, R]):
    """A function registered to run on a schedule; calling it from code does nothing."""

    def __init__(self, func: Callable[P, R], spec: "ScheduleSpec") -> None:
        self.func = func
        self.spec = spec
        self.name = spec.name
        self.__wrapped__ = func
        self.__name__ = getattr(func, "__name__", spec.name)
        self.__doc__ = getattr(func, "__doc__", None)

    def __repr__(self) -> str:
        return f"<{self.spec.kind} task {self.name} ({self.spec.spec})>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Do nothing and return None: a scheduled function runs by its schedule only."""
        return None

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function here and now, synchronously."""
        return self.func(*args, **kwargs)


def _run_options(caller, options):
    extra = {k: options.pop(k) for k in list(options) if k in RUN_OPTIONS}
    return TaskOptions.build(caller, extra)


class _Factory:
    kind = ""

    def make_spec(self, name: str) -> "ScheduleSpec":
        raise NotImplementedError

    def __call__(self, func: Callable[P, R]) -> ScheduledFunction[P, R] | Callable[P, R]:
        if not conf.IS_ACTIVE:
            # Nothing is scheduled, but the checks say so (autotask.W041).
            registry.declare_inactive(func, lambda name: ScheduledFunction(func, self.make_spec(name)))
            return func
        spec = self.make_spec(function_path(func))
        unique.check_template_fields(func, spec.options.unique_key)
        scheduled = ScheduledFunction(func, spec)
        add(spec)
        registry.register(scheduled)
        return scheduled

    @staticmethod
    def _reject_unknown(caller, options, accepted):
        if options:
            raise TypeError(
                f"{caller}() got unexpected keyword argument(s) {', '.join(sorted(options))}; "
                f"it accepts {', '.join(accepted)}"
            )


class PeriodicFactory(_Factory):
    POSITIONAL = ("seconds", "start_now")
    kind = "periodic"

    def __init__(self, caller, options):
        options = dict(options)
        self.options = _run_options(caller, options)
        seconds = options.pop("seconds", 3600)
        start_now = options.pop("start_now", False)
        self._reject_unknown(caller, options, (*self.POSITIONAL, *RUN_OPTIONS))
        if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not seconds > 0:
            raise InvalidTaskOptions(f"seconds must be a positive number, not {seconds!r}")
        if seconds != seconds or seconds == float("inf"):
            raise InvalidTaskOptions(f"seconds must be finite, not {seconds!r}")
        if not isinstance(start_now, bool):
            raise InvalidTaskOptions(f"start_now must be True or False, not {start_now!r}")
        self.seconds, self.start_now = float(seconds), start_now

    def make_spec(self, name):
        return ScheduleSpec(
            name, "periodic", seconds=self.seconds, start_now=self.start_now, options=self.options
        )


class CronFactory(_Factory):
    POSITIONAL = ("minutes", "hours", "dow", "months", "dom", "crontab")
    kind = "cron"

    def __init__(self, caller, options):
        options = dict(options)
        self.options = _run_options(caller, options)
        legacy = {name: options.pop(name, None) for name in self.POSITIONAL}
        cron = options.pop("cron", None)
        tz = options.pop("timezone", None)
        self._reject_unknown(caller, options, (*self.POSITIONAL, "cron", "timezone", *RUN_OPTIONS))
        if cron is not None:
            given = sorted(name for name, value in legacy.items() if value is not None)
            if given:
                raise InvalidTaskOptions(
                    f"cron= (standard field order) cannot be combined with {', '.join(given)} "
                    "(the original's fields); use one or the other"
                )
            if not isinstance(cron, str):
                raise InvalidTaskOptions(f"cron must be a string such as '*/15 * * * *', not {cron!r}")
            self.expression = CronExpression.parse(cron)
        else:
            self.expression = CronExpression.from_legacy(**legacy)
        self.timezone = _timezone_name(tz)

    def make_spec(self, name):
        return ScheduleSpec(name, "cron", cron=self.expression, timezone=self.timezone, options=self.options)


def _timezone_name(tz):
    """Validate ``tz`` now and return the name stored with the schedule."""
    if tz is None:
        return ""
    resolved = resolve_timezone(tz)  # raises InvalidTaskOptions for unknown names
    name = getattr(resolved, "key", None) or getattr(tz, "zone", None)
    if name:
        return name
    if resolved.utcoffset(None) == timedelta(0):
        return "UTC"
    raise InvalidTaskOptions(
        f"timezone {tz!r} is a fixed offset; name a zone such as 'Europe/Berlin' so DST is followed"
    )


# -- syncing and ticking --------------------------------------------------------


def add(spec, replace=True):
    """Declare the schedule ``spec`` in this process (``replace``: over one of the same name)."""
    if replace or spec.name not in _schedules:
        _schedules[spec.name] = spec
        _synced.clear()  # a schedule declared after start-up is written at the next tick
        _unstored.add(spec.name)
        for hook in declared_hooks:
            hook()


def registered():
    """Return the schedules this process declares, by name."""
    return dict(_schedules)


__all__ = [
    "CronFactory",
    "PeriodicFactory",
    "ScheduleSpec",
    "ScheduledFunction",
    "add",
    "registered",
]
