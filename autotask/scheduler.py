"""Periodic and cron tasks: registration, and exactly one run per occurrence.

Each schedule is one row of :class:`~autotask.models.Schedule`, created with
the database's unique constraint on its name (so any number of processes may
register at once) and never deleted by a process that exits.  A worker that
finds ``next_run_at`` due advances it with a compare-and-set
(``UPDATE … WHERE next_run_at = <the value it read>``) and enqueues the run
in the same transaction: whoever wins the update enqueues, everybody else
updates nothing.  The new ``next_run_at`` is the first occurrence after *now*,
so a schedule missed during downtime runs once, not once per missed
occurrence.

Whichever process declares a schedule stores it (a web process whose view
imports the module, a script, ``manage.py shell``), at the first moment that
is safe: at once when Django is set up and the task database is not inside a
transaction, else at the start or end of the next request, else when the
process exits.  Workers pick up schedules they do not declare themselves by
importing the function by name.
"""

import asyncio
import atexit
import logging
import numbers
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.apps import apps
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connections, transaction
from django.utils import timezone

from . import enqueue as _enqueue
from . import registry
from .conf import conf
from .cron import CronExpression, resolve_timezone
from .exceptions import InvalidTaskOptions, TaskFunctionNotFound
from .registry import TaskOptions

logger = logging.getLogger("autotask")

MAX_TICK_WAIT = 5.0  # seconds: look again this often for schedules other processes stored
STORE_RETRY_SECONDS = 10.0  # after a failed attempt to store, wait this long before the next
# Management commands whose declarations are not stored: they build, migrate or
# test the database (it may not be migrated yet, or not be the site's), or they
# are the worker, which stores what it declares at its first tick.
NO_STORE_COMMANDS = frozenset(
    {
        "check", "collectstatic", "compilemessages", "createcachetable", "dbshell", "diffsettings",
        "flush", "help", "inspectdb", "makemessages", "makemigrations", "migrate", "optimizemigration",
        "showmigrations", "sqlflush", "sqlmigrate", "squashmigrations", "startapp", "startproject",
        "test", "testserver", "version", "run_autotask",
    }
)  # fmt: skip
RUN_OPTIONS = tuple(name for name in TaskOptions.NAMES if name != "delay")  # a run's options

_schedules = {}  # name -> ScheduleSpec, filled by the decorators at import time
_synced = set()  # database aliases this process has written its schedules to
_unstored = set()  # names of schedules declared here that this process has not stored yet
_store_lock = threading.Lock()
_store_state = {"retry_at": 0.0, "logged": None}  # after a failure: when to try again, what was logged


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


class ScheduledFunction:
    """A function registered to run on a schedule; calling it from code does nothing."""

    def __init__(self, func, spec):
        self.func = func
        self.spec = spec
        self.name = spec.name
        self.__wrapped__ = func
        self.__name__ = getattr(func, "__name__", spec.name)
        self.__doc__ = getattr(func, "__doc__", None)

    def __repr__(self):
        return f"<{self.spec.kind} task {self.name} ({self.spec.spec})>"

    def __call__(self, *args, **kwargs):
        """Do nothing and return None: a scheduled function runs by its schedule only."""
        return None

    def run(self, *args, **kwargs):
        """Call the function here and now, synchronously."""
        return self.func(*args, **kwargs)


def _run_options(caller, options):
    extra = {k: options.pop(k) for k in list(options) if k in RUN_OPTIONS}
    return TaskOptions.build(caller, extra)


class _Factory:
    kind = ""

    def __call__(self, func):
        if not conf.IS_ACTIVE:
            # Nothing is scheduled, but the checks say so (autotask.W041).
            registry.declare_inactive(func, lambda name: ScheduledFunction(func, self.make_spec(name)))
            return func
        spec = self.make_spec(registry.function_path(func))
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


# -- time conventions -----------------------------------------------------------


def _aware(value):
    """A database datetime as an aware UTC datetime (USE_TZ on or off)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value.astimezone(UTC)


def _stored(value):
    """An aware datetime as the database stores it under the current USE_TZ."""
    if settings.USE_TZ:
        return value
    return timezone.make_naive(value, timezone.get_default_timezone())


# -- syncing and ticking --------------------------------------------------------


def sync(using=None, now=None):
    """Write this process's schedules to the database (idempotent, race-free)."""
    alias = using or conf.DATABASE
    names = list(_schedules)
    _write(names, alias, _aware(now or timezone.now()))
    _unstored.difference_update(names)
    _adopt_or_mark_missing(alias)
    _synced.add(alias)


def _write(names, alias, now_utc):
    """Store the declared schedules ``names``: create the missing rows, reconcile the others."""
    from .models import Schedule

    rows = [
        Schedule(
            name=spec.name,
            kind=spec.kind,
            spec=spec.spec,
            timezone=spec.timezone,
            queue=spec.options.queue or conf.DEFAULT_QUEUE,
            next_run_at=_stored(spec.first_run(now_utc)),
        )
        for spec in (_schedules[name] for name in names)
    ]
    # The unique name makes concurrent registration safe: the losers' rows are ignored.
    Schedule.objects.using(alias).bulk_create(rows, ignore_conflicts=True)
    for row in Schedule.objects.using(alias).filter(name__in=names):
        _reconcile(row, _schedules[row.name], now_utc, alias)


def _reconcile(row, spec, now_utc, alias):
    """Bring a stored schedule in line with the code (changed spec, revived function)."""
    from .models import Schedule

    changes = {}
    if (row.kind, row.spec, row.timezone) != (spec.kind, spec.spec, spec.timezone):
        changes.update(
            kind=spec.kind,
            spec=spec.spec,
            timezone=spec.timezone,
            next_run_at=_stored(spec.first_run(now_utc)),
        )
    if row.missing:
        changes.update(missing=False, last_error="")
    if changes:
        # Compare-and-set on the old spec: of several processes, one rewrites it.
        Schedule.objects.using(alias).filter(pk=row.pk, spec=row.spec, kind=row.kind).update(**changes)


def _adopt_or_mark_missing(alias):
    """Import by name the schedules other processes stored; mark those that cannot be imported missing."""
    from .models import Schedule

    for row in Schedule.objects.using(alias).filter(missing=False).exclude(name__in=list(_schedules)):
        try:
            target = registry.import_by_path(row.name)
        except TaskFunctionNotFound as exc:
            reason = f"the function {row.name} is gone from the code ({exc}); this schedule has stopped"
        else:
            if isinstance(target, ScheduledFunction):
                _schedules.setdefault(target.name, target.spec)
            if row.name in _schedules:
                continue  # importing it declared the schedule (a decorator, or a django.tasks task)
            reason = (
                f"{row.name} is no longer decorated as a periodic or cron task; this schedule has stopped"
            )
        updated = (
            Schedule.objects.using(alias)
            .filter(pk=row.pk, missing=False)
            .update(missing=True, last_error=reason)
        )
        if updated:
            logger.error("schedule %s stopped: %s", row.name, reason, extra={"function": row.name})


def tick(using=None, now=None):
    """Enqueue every due occurrence; return seconds until the next one is due."""
    alias = using or conf.DATABASE
    now = now or timezone.now()
    rows = _stored_schedules(alias)
    if alias not in _synced or not {row.name for row in rows}.issuperset(_schedules):
        # First tick of this process, or a row was deleted (by hand, or a test's flush).
        sync(alias, now)
        rows = _stored_schedules(alias)
    elif any(not row.missing and row.name not in _schedules for row in rows):
        # Stored by a process that declares it (a web process, a script): run it here too.
        _adopt_or_mark_missing(alias)
        rows = _stored_schedules(alias)
    now_utc = _aware(now)
    upcoming = []
    for row in rows:
        if row.missing or row.name not in _schedules:
            continue
        if _aware(row.next_run_at) <= now_utc:
            upcoming.append(_fire(row, _schedules[row.name], now_utc, alias))
        else:
            upcoming.append(_aware(row.next_run_at))
    if not upcoming:
        return MAX_TICK_WAIT
    return min(MAX_TICK_WAIT, max(0.0, (min(upcoming) - _aware(timezone.now())).total_seconds()))


def _stored_schedules(alias):
    from .models import Schedule

    return list(Schedule.objects.using(alias).only("name", "next_run_at", "missing"))


def _fire(row, spec, now_utc, alias):
    """Advance ``row`` past now and enqueue its run, both or neither; return the next run."""
    from .models import Schedule

    occurrence = _aware(row.next_run_at)
    following = spec.next_after(now_utc, previous=occurrence)
    with transaction.atomic(using=alias):
        won = (
            Schedule.objects.using(alias)
            .filter(pk=row.pk, next_run_at=row.next_run_at, missing=False)
            .update(next_run_at=_stored(following), last_run_at=_stored(occurrence))
        )
        if not won:
            return following  # another process enqueued this occurrence
        _enqueue_run(spec, row.pk, occurrence, alias)
    if occurrence < now_utc - timedelta(seconds=60):
        logger.info("schedule %s ran once for occurrences missed since %s", spec.name, occurrence.isoformat())
    return following


def _enqueue_run(spec, schedule_id, occurrence, alias):
    row = _enqueue.build_row(
        spec.name, (), {}, spec.options, timezone.now(), kind=spec.kind, schedule_id=schedule_id
    )
    row.scheduled_at = _stored(occurrence)
    _enqueue.insert([row], using=alias)


def run_now(schedule, using=None):
    """Enqueue one extra run of ``schedule`` (a Schedule row) now; return its task id."""
    alias = using or conf.DATABASE
    spec = _schedules.get(schedule.name)
    options = spec.options if spec else TaskOptions(queue=schedule.queue)
    row = _enqueue.build_row(
        schedule.name, (), {}, options, timezone.now(), kind=schedule.kind, schedule_id=schedule.pk
    )
    return _enqueue.insert([row], using=alias)[0]


def record_outcomes(using, outcomes):
    """Copy the outcome of scheduled runs onto their schedules (last status and error)."""
    from .models import Schedule

    for outcome in outcomes:
        Schedule.objects.using(using or conf.DATABASE).filter(pk=outcome.schedule_id).update(
            last_status=outcome.status, last_error=outcome.error_message
        )


def add(spec, replace=True):
    """Declare the schedule ``spec`` in this process (``replace``: over one of the same name)."""
    if replace or spec.name not in _schedules:
        _schedules[spec.name] = spec
        _synced.clear()  # a schedule declared after start-up is written at the next tick
        _unstored.add(spec.name)
        store_declared()


# -- storing from the declaring process -----------------------------------------


def store_declared(serving=False):
    """Store the schedules declared here and not stored yet, if this is a safe moment.

    ``serving``: called at the start or end of a request.  Return True when
    nothing is left to store.  Never raises: a failure is logged, and the
    schedules stay pending for the next safe moment.
    """
    if not _unstored:
        return True
    reason = _cannot_store_now(serving)
    if reason is not None:
        logger.debug("schedules declared here are not stored yet: %s", reason)
        return False
    if time.monotonic() < _store_state["retry_at"]:
        return False
    alias = conf.DATABASE
    with _store_lock:
        _unstored.intersection_update(_schedules)  # forget schedules undeclared since (tests)
        names = sorted(_unstored)
        if not names:
            return True
        try:
            with transaction.atomic(using=alias):
                _write(names, alias, _aware(timezone.now()))
        except Exception as exc:  # noqa: BLE001 - the importing code must not fail because of it
            _store_failed(names, exc)
            return False
        _unstored.difference_update(names)
        _store_state.update(retry_at=0.0, logged=None)
    logger.info("stored the schedules declared in this process: %s", ", ".join(names))
    return True


def _cannot_store_now(serving):
    """Return why this process must not write its schedules now, or None when it may."""
    from .supervisor import management_command

    if not apps.ready:
        return "Django is still loading its apps"
    if not serving:
        if "pytest" in sys.modules:
            # Test modules are imported before the test database exists.
            return "a test run stores schedules only while a test serves a request"
        found = management_command()
        if found is not None and found[0] in NO_STORE_COMMANDS:
            return f"'manage.py {found[0]}' does not store schedules"
    alias = conf.DATABASE
    if alias not in connections.settings:
        return f"AUTOTASK_DATABASE {alias!r} is not in DATABASES"
    if connections[alias].in_atomic_block:
        return "the task database is inside a transaction here (a rollback would undo the schedule)"
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return "this thread runs an event loop (the ORM is synchronous)"


def _store_failed(names, exc):
    from .maintenance import hint_for

    _store_state["retry_at"] = time.monotonic() + STORE_RETRY_SECONDS
    message = f"{exc}{hint_for(exc)}"
    if _store_state["logged"] == message:
        return  # said already; tried again quietly
    _store_state["logged"] = message
    logger.warning(
        "could not store the schedules declared in this process (%s): %s; trying again at the next "
        "request and when the process exits",
        ", ".join(names),
        message,
    )


def _store_on_request(sender, **kwargs):
    if not _unstored:
        return
    alias = conf.DATABASE
    opened = alias in connections.settings and connections[alias].connection is None
    store_declared(serving=True)
    if opened and kwargs.get("signal") is request_finished:
        connections[alias].close()  # Django closed the request's connections before this receiver


def _store_at_exit():
    """Last chance: store what is still pending, or say loudly that it never was."""
    pending = _unstored & set(_schedules)
    if not pending:
        return
    _store_state["retry_at"] = 0.0
    if store_declared():
        return
    reason = _cannot_store_now(serving=False)
    if reason is not None and ("test run" in reason or "does not store" in reason):
        return  # by design: the processes that serve store them
    logger.error(
        "the schedules declared in this process were never stored (%s): %s. They run only if a "
        "worker declares them too; declare them in a module every process imports (e.g. from an "
        "AppConfig.ready()), or run this process when the task database is reachable.",
        ", ".join(sorted(pending)),
        reason or _store_state["logged"],
    )


request_started.connect(_store_on_request, dispatch_uid="autotask.scheduler.store_on_request_started")
request_finished.connect(_store_on_request, dispatch_uid="autotask.scheduler.store_on_request_finished")
atexit.register(_store_at_exit)


def registered():
    """Return the schedules this process declares, by name."""
    return dict(_schedules)


__all__ = [
    "CronFactory",
    "PeriodicFactory",
    "ScheduleSpec",
    "ScheduledFunction",
    "record_outcomes",
    "run_now",
    "store_declared",
    "sync",
    "tick",
]
