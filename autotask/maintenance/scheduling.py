"""Firing schedules: exactly one run per occurrence, whichever worker gets there first.

Each schedule is one row of :class:`~autotask.models.Schedule`, created with
the database's unique constraint on its name (so any number of processes may
register at once) and never deleted by a process that exits.  A worker that
finds ``next_run_at`` due advances it with a compare-and-set
(``UPDATE … WHERE next_run_at = <the value it read>``) and enqueues the run
in the same transaction: whoever wins the update enqueues, everybody else
updates nothing.  The new ``next_run_at`` is the first occurrence after *now*,
so a schedule missed during downtime runs once, not once per missed
occurrence.  A paused schedule does not fire at all; resumed, it runs at its
next occurrence after the resume (:mod:`autotask.maintenance.pauses`).

Whichever process declares a schedule stores it (a web process whose view
imports the module, a script, ``manage.py shell``), at the first moment that
is safe: at once when Django is set up and the task database is not inside a
transaction, else at the start or end of the next request, else when the
process exits (:mod:`autotask.supervisor.schedules`).  Workers pick up
schedules they do not declare themselves by importing the function by name.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .. import enqueue as _enqueue
from ..conf import conf
from ..definitions import registry
from ..definitions.options import TaskOptions

# The declarations of this process, shared with the decorators (mutated, never rebound).
from ..definitions.schedules import ScheduledFunction, _schedules, _synced, _unstored
from ..exceptions import TaskFunctionNotFound
from ..models import Schedule
from ..timeutil import aware_utc as _aware
from ..timeutil import stored as _stored

logger = logging.getLogger("autotask")


MAX_TICK_WAIT = 5.0  # seconds: look again this often for schedules other processes stored


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
        if row.missing or row.paused or row.name not in _schedules:
            continue  # a paused schedule neither fires nor sets the next wake-up
        if _aware(row.next_run_at) <= now_utc:
            upcoming.append(_fire(row, _schedules[row.name], now_utc, alias))
        else:
            upcoming.append(_aware(row.next_run_at))
    if not upcoming:
        return MAX_TICK_WAIT
    return min(MAX_TICK_WAIT, max(0.0, (min(upcoming) - _aware(timezone.now())).total_seconds()))


def _stored_schedules(alias):
    return list(Schedule.objects.using(alias).only("name", "next_run_at", "missing", "paused"))


def _fire(row, spec, now_utc, alias):
    """Advance ``row`` past now and enqueue its run, both or neither; return the next run."""
    occurrence = _aware(row.next_run_at)
    following = spec.next_after(now_utc, previous=occurrence)
    with transaction.atomic(using=alias):
        won = (
            Schedule.objects.using(alias)
            # Not paused: a pause committed since the read holds (see maintenance.pauses).
            .filter(pk=row.pk, next_run_at=row.next_run_at, missing=False, paused=False)
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
    ((pk, duplicate),) = _enqueue.store(
        [row], using=alias, traced=False
    )  # nobody enqueued it: its run span is a root
    if duplicate:
        # A unique schedule: the previous run still holds the key; this occurrence is skipped.
        logger.info(
            "schedule %s skipped the occurrence at %s: its run #%s still holds the unique key",
            spec.name,
            occurrence.isoformat(),
            pk,
        )


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
    for outcome in outcomes:
        Schedule.objects.using(using or conf.DATABASE).filter(pk=outcome.schedule_id).update(
            last_status=outcome.status, last_error=outcome.error_message
        )


__all__ = ["record_outcomes", "run_now", "sync", "tick"]
