"""Pausing and resuming queues and schedules at run time, persisted in the database.

A paused queue is a row of :class:`~autotask.models.PausedQueue`; every claim
statement leaves its tasks out (``Driver._queue_filter``), so its tasks stay
WAITING, whichever worker or machine claims, across restarts, until the row is
deleted.  A queue may be paused before any of its tasks exists (ahead of a
deployment, say): :func:`unknown_queues` tells which names nothing knows of,
so a typo shows.

A paused schedule (``Schedule.paused``) does not fire: the scheduler skips it
and its compare-and-set refuses a paused row.  Resuming does not catch up:
the next run is the first occurrence after the resume (a periodic schedule
keeps its phase), however many were missed while it was paused.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import enqueue as _enqueue
from ..conf import conf
from ..cron import CronExpression
from ..db import get_ops
from ..definitions import registry
from ..definitions.options import function_path
from ..definitions.schedules import ScheduleSpec, _schedules
from ..exceptions import InvalidQueueName, ScheduleNotFound
from ..models import PausedQueue, Schedule, TaskQueue, Worker
from ..task import WAITING
from ..timeutil import aware_utc as _aware
from ..timeutil import stored as _stored

RESUME_ATTEMPTS = 3  # reads of a schedule whose row changes under a resume (a deploy rewriting it)
QUEUE_NAME_MAX = PausedQueue._meta.get_field("name").max_length  # as long as a task's queue


def check_queue_name(name):
    """Return ``name`` if a task's queue can be called so; else raise :class:`InvalidQueueName`."""
    if not isinstance(name, str):
        raise InvalidQueueName(f"queue must be a queue name (str), not {type(name).__name__} {name!r}")
    if not name or len(name) > QUEUE_NAME_MAX:
        # What the queue option of a task accepts (definitions.options).
        raise InvalidQueueName(
            f"queue must be a non-empty name of at most {QUEUE_NAME_MAX} characters, not {name[:120]!r}"
        )
    return name


# -- queues ----------------------------------------------------------------


def pause_queue(name, using=None, by=""):
    """Pause the queue ``name``: no worker claims its tasks until resumed; return True if newly paused.

    Once this returns, no claim that starts takes a task of the queue;
    tasks already claimed run to their end.
    """
    check_queue_name(name)
    alias = using or conf.DATABASE
    try:
        # Its own savepoint: a duplicate (already paused, or paused concurrently) is no error.
        with transaction.atomic(using=alias):
            PausedQueue.objects.using(alias).create(name=name, paused_by=str(by)[:150])
    except IntegrityError:
        return False
    return True


def resume_queue(name, using=None):
    """Resume the queue ``name`` and wake its workers; return True if it was paused."""
    check_queue_name(name)
    alias = using or conf.DATABASE
    with transaction.atomic(using=alias):
        deleted, _ = PausedQueue.objects.using(alias).filter(name=name).delete()
        if deleted:
            _wake(alias, [name])
    return bool(deleted)


def unknown_queues(names, using=None):
    """Return those of ``names`` that no waiting task, schedule, worker or declared task uses.

    Pausing such a name is allowed (ahead of time), but may be a typo.
    """
    alias = using or conf.DATABASE
    known = {conf.DEFAULT_QUEUE, *(conf.QUEUES or ())}
    for definition in registry.all_definitions().values():
        queue = getattr(getattr(definition, "options", None), "queue", None)
        if queue:
            known.add(queue)
    known.update(spec.options.queue for spec in _schedules.values() if spec.options.queue)
    remaining = [name for name in names if name not in known]
    if not remaining:
        return []
    known.update(Schedule.objects.using(alias).filter(queue__in=remaining).values_list("queue", flat=True))
    for queues in Worker.objects.using(alias).exclude(queues="").values_list("queues", flat=True):
        known.update(q.strip() for q in queues.split(","))
    # Waiting tasks only: the claim index (led by the queue) answers at once, where a look
    # for any row of the queue would read the whole table for a typo.
    waiting = TaskQueue.objects.using(alias).filter(status=WAITING)
    known.update(name for name in remaining if name not in known and waiting.filter(queue=name).exists())
    return [name for name in remaining if name not in known]


def _wake(alias, queues):
    """Wake ``queues``' workers on commit: their waiting tasks are claimable again."""
    ops = get_ops(alias)
    with ops.cursor() as cursor:
        ops.notify(cursor, queues)
    _enqueue.wake_local_on_commit(alias)


# -- schedules -------------------------------------------------------------


def schedule_name(task_or_name):
    """The stored name of a schedule given as its name, its periodic/cron task or its function."""
    if isinstance(task_or_name, str):
        return task_or_name
    name = getattr(task_or_name, "name", None)
    if isinstance(name, str) and name:
        return name
    if callable(task_or_name):
        return function_path(task_or_name)
    raise TypeError(f"schedule must be a schedule's name or its task, not {task_or_name!r}")


def stored_schedule(task_or_name, alias):
    """The stored schedule; one this process declares but has not stored yet is stored first."""
    name = schedule_name(task_or_name)
    rows = Schedule.objects.using(alias)
    row = rows.filter(name=name).first()
    if row is None and name in _schedules:
        from .scheduling import sync

        sync(alias)
        row = rows.filter(name=name).first()
    if row is None:
        raise ScheduleNotFound(
            f"no periodic or cron schedule named {name!r} (see manage.py autotask_status for the list)"
        )
    return row


def pause_schedule(task_or_name, using=None, by=""):
    """Pause a schedule: none of its runs is enqueued until resumed; return True if newly paused.

    Runs already enqueued are left alone (pause their queue, or cancel them, to hold them too).
    """
    alias = using or conf.DATABASE
    row = stored_schedule(task_or_name, alias)
    updated = (
        Schedule.objects.using(alias)
        .filter(pk=row.pk, paused=False)
        .update(paused=True, paused_at=timezone.now(), paused_by=str(by)[:150])
    )
    return bool(updated)


def resume_schedule(task_or_name, using=None, now=None):
    """Resume a schedule, its next run the first occurrence after now; return True if it was paused.

    The runs missed while paused are not made up (no burst on resume).
    """
    alias = using or conf.DATABASE
    row = stored_schedule(task_or_name, alias)
    now_utc = _aware(now or timezone.now())
    for _ in range(RESUME_ATTEMPTS):
        if not row.paused:
            return False
        following = _spec_of(row).next_after(now_utc, previous=_aware(row.next_run_at))
        # Compare-and-set on the row as read: of two concurrent resumes one writes, and a
        # next run rewritten meanwhile (a changed spec) is read again.
        updated = (
            Schedule.objects.using(alias)
            .filter(pk=row.pk, paused=True, next_run_at=row.next_run_at, spec=row.spec)
            .update(paused=False, paused_at=None, paused_by="", next_run_at=_stored(following))
        )
        if updated:
            return True
        row = Schedule.objects.using(alias).get(pk=row.pk)
    return False


def _spec_of(row):
    """The schedule ``row`` stands for: as declared here, else as stored."""
    spec = _schedules.get(row.name)
    if spec is not None:
        return spec
    if row.kind == "periodic":
        return ScheduleSpec(row.name, "periodic", seconds=float(row.spec))
    return ScheduleSpec(row.name, "cron", cron=CronExpression.parse(row.spec), timezone=row.timezone)


__all__ = [
    "check_queue_name",
    "pause_queue",
    "pause_schedule",
    "resume_queue",
    "resume_schedule",
    "schedule_name",
    "stored_schedule",
    "unknown_queues",
]
