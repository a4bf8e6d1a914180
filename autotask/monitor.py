"""What the queue looks like now, and the operator's actions that need more than a row verb.

Shared by the admin, ``manage.py autotask_status`` and ``autotask_clean``
so that every view of the queue counts the same way.  The row changes
themselves are verbs of ``TaskQueue.objects`` (:mod:`autotask.models`).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from . import enqueue
from .conf import conf
from .db import get_ops
from .definitions import registry
from .definitions.unique import SCOPE_NAMES
from .exceptions import NotADeclaredTask, TaskFunctionNotFound
from .maintenance import scheduling
from .maintenance.pruning import prune
from .models import Schedule, TaskQueue, Worker
from .task import ERROR, RUNNING, STATUS_NAMES, WAITING
from .timeutil import iso_or_value

logger = logging.getLogger("autotask")

# A worker beats every LEASE_SECONDS / 3 (see maintenance.Timers).  It counts
# as alive while its last heartbeat is younger than two leases: six missed
# beats, so a worker busy with a slow database is not reported dead, yet one
# that is gone shows as such well before its tasks' leases are recovered twice.
ALIVE_LEASES = 2
FAILURE_WINDOW = timedelta(hours=1)  # "failures in the last hour"
SCHEDULES_SHOWN = 50  # periodic/cron tasks listed by the summary
# Seconds past its next run after which a schedule is overdue: the scheduler
# ticks every second, and a worker retrying the database waits up to 5 s.
OVERDUE_AFTER = 10.0


def alive_after(now, worker_timeout=None):
    """Return the instant after which a heartbeat means the worker is alive."""
    seconds = worker_timeout if worker_timeout is not None else ALIVE_LEASES * conf.LEASE_SECONDS
    return now - timedelta(seconds=seconds)


@dataclass
class Snapshot:
    """The state of the queue at one instant (``now``)."""

    now: datetime
    worker_timeout: float
    depth: dict = field(default_factory=dict)  # queue -> {status name: count}
    oldest_waiting: dict | None = None  # id, function, queue, scheduled_at, age (seconds)
    failures_last_hour: int = 0
    workers: list = field(default_factory=list)  # dicts, alive ones first
    schedules: list = field(default_factory=list)  # dicts, by next run (SCHEDULES_SHOWN at most)
    schedules_total: int = 0  # schedules in the table, listed or not
    unique: dict = field(default_factory=dict)  # scope name -> waiting or running tasks holding a key

    @property
    def totals(self):
        """Return {status name: count} over every queue (every status present)."""
        totals = dict.fromkeys(STATUS_NAMES.values(), 0)
        for counts in self.depth.values():
            for name, count in counts.items():
                totals[name] += count
        return totals

    @property
    def workers_alive(self):
        return [w for w in self.workers if w["alive"]]

    def problems(self, max_wait=None, require_worker=True):
        """Return the reasons the queue is unhealthy (empty when healthy)."""
        problems = []
        if require_worker and not self.workers_alive:
            problems.append(f"no worker has been seen in the last {format_age(self.worker_timeout)}")
        oldest = self.oldest_waiting
        if max_wait is not None and oldest and oldest["age"] > max_wait:
            problems.append(
                f"the oldest waiting task (#{oldest['id']} {oldest['function']}) has waited "
                f"{format_age(oldest['age'])}, more than {format_age(max_wait)}"
            )
        return problems

    def as_dict(self):
        """Return the snapshot as JSON-ready data."""
        oldest = self.oldest_waiting and {
            **self.oldest_waiting,
            "scheduled_at": iso_or_value(self.oldest_waiting["scheduled_at"]),
        }
        return {
            "now": iso_or_value(self.now),
            "queues": self.depth,
            "totals": self.totals,
            "oldest_waiting": oldest,
            "oldest_waiting_seconds": oldest["age"] if oldest else None,
            "failures_last_hour": self.failures_last_hour,
            "worker_timeout": self.worker_timeout,
            "workers_alive": len(self.workers_alive),
            "workers": [_iso_values(w) for w in self.workers],
            "schedules": [_iso_values(s) for s in self.schedules],
            "unique": self.unique,
        }


def snapshot(using=None, now=None, worker_timeout=None):
    """Read the queue's state in a handful of queries (none per task)."""

    using = using or conf.DATABASE
    now = now or timezone.now()
    timeout = worker_timeout if worker_timeout is not None else ALIVE_LEASES * conf.LEASE_SECONDS
    tasks = TaskQueue.objects.using(using)
    snap = Snapshot(now=now, worker_timeout=float(timeout))
    for row in tasks.order_by().values("queue", "status").annotate(count=Count("id")):
        name = STATUS_NAMES.get(row["status"], str(row["status"]))
        snap.depth.setdefault(row["queue"], {})[name] = row["count"]
    snap.depth = dict(sorted(snap.depth.items()))
    snap.oldest_waiting = _oldest_waiting(tasks, now)
    since = now - FAILURE_WINDOW
    snap.failures_last_hour = tasks.filter(status=ERROR, finished_at__gte=since).count()
    snap.unique = _unique_counts(tasks)
    threshold = alive_after(now, timeout)
    workers = Worker.objects.using(using).order_by("-last_seen", "worker_id")
    snap.workers = [
        {
            "worker_id": w.worker_id,
            "hostname": w.hostname,
            "pid": w.pid,
            "queues": w.queues,
            "concurrency": w.concurrency,
            "started_at": w.started_at,
            "last_seen": w.last_seen,
            "alive": w.last_seen >= threshold,
        }
        for w in workers
    ]
    schedules = Schedule.objects.using(using).order_by("missing", "next_run_at", "name")[:SCHEDULES_SHOWN]
    snap.schedules = [
        {
            "id": s.pk,
            "name": s.name,
            "kind": s.kind,
            "spec": s.spec,
            "queue": s.queue,
            "next_run_at": s.next_run_at,
            "last_run_at": s.last_run_at,
            "last_status": STATUS_NAMES.get(s.last_status) if s.last_status is not None else None,
            "missing": s.missing,
            "overdue": (late := overdue_by(s, now)) is not None,
            "overdue_seconds": late,
        }
        for s in schedules
    ]
    snap.schedules_total = len(snap.schedules)
    if snap.schedules_total == SCHEDULES_SHOWN:  # the list was cut: count them all
        snap.schedules_total = Schedule.objects.using(using).count()
    return snap


def _unique_counts(tasks):
    """{scope name: count} of the waiting or running tasks that hold a unique key (every scope)."""
    counts = dict.fromkeys(SCOPE_NAMES.values(), 0)
    keyed = tasks.filter(unique_key__isnull=False, status__in=(WAITING, RUNNING)).order_by()
    for row in keyed.values("unique_scope").annotate(count=Count("id")):
        counts[SCOPE_NAMES.get(row["unique_scope"], str(row["unique_scope"]))] = row["count"]
    return counts


def overdue_by(schedule, now):
    """Seconds a schedule's next run is past due, beyond the scheduler's tolerance; else None.

    A worker enqueues a due run within about a second (its scheduler ticks
    every second); a next run more than OVERDUE_AFTER seconds in the past
    means no worker is running the schedules, not that the run is upcoming.
    """
    if schedule.missing:
        return None
    late = (now - schedule.next_run_at).total_seconds()
    return late if late > OVERDUE_AFTER else None


def _oldest_waiting(tasks, now):
    # Only due tasks count: one scheduled for tomorrow is not late.
    row = (
        tasks.filter(status=WAITING, scheduled_at__lte=now)
        .order_by("scheduled_at", "id")
        .values("id", "function", "queue", "scheduled_at")
        .first()
    )
    if row is None:
        return None
    row["age"] = max(0.0, (now - row["scheduled_at"]).total_seconds())
    return row


def _iso_values(row):
    return {key: iso_or_value(value) for key, value in row.items()}


def format_age(seconds):
    """Return a short human reading of a duration: '4.2 s', '45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    seconds = max(0.0, float(seconds))
    if seconds < 9.95:  # below what rounds to "10.0"
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds) // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# -- operator verbs ------------------------------------------------------


def retry_failed(queryset, now=None):
    """Put the ERROR tasks of ``queryset`` back to WAITING, due now; return how many.

    See :func:`retry_failed_tasks`, which also says which functions were refused.
    """
    return retry_failed_tasks(queryset, now)[0]


def retry_failed_tasks(queryset, now=None, key_taken=None):
    """Put the ERROR tasks of ``queryset`` back to WAITING, due now.

    Return (how many, the set of function names left ERROR as not declared).
    A unique task whose key another task holds stays ERROR, its id appended
    to ``key_taken`` if given (and logged).

    Each gets a fresh attempt budget: as many attempts as its task allows
    (``retries`` + 1, read from the task's definition; one attempt when the
    function cannot be imported), counted on from the attempts it already
    made, which its history keeps.  Tasks whose function is not a declared
    task (see :func:`undeclared`) stay ERROR: no worker would run them.
    """
    alias = queryset.db
    failed = queryset.failed().order_by()
    with transaction.atomic(using=alias):
        refused = undeclared(set(failed.values_list("function", flat=True).distinct()))
        if refused:
            logger.warning("not retried, not a declared task: %s", ", ".join(sorted(refused)))
            failed = failed.exclude(function__in=refused)
        queues = set(failed.values_list("queue", flat=True).distinct())
        taken = [] if key_taken is None else key_taken
        retried = failed.retry_failed(now, attempts_for=_attempt_budget, key_taken=taken)
        if taken:
            logger.warning(
                "not retried, another task holds their unique key: task(s) %s", ", ".join(map(str, taken))
            )
        if retried:
            _wake(alias, queues)
    return retried, refused


def undeclared(functions):
    """Return the names among ``functions`` that name no declared task.

    A worker refuses those (the row ends ERROR), so retrying or running them
    again would only fail again.  A name that cannot be imported here is not
    counted: the workers, which may have more code, decide.
    """
    refused = set()
    for function in functions:
        try:
            registry.get(function)
        except NotADeclaredTask:
            refused.add(function)
        except TaskFunctionNotFound:
            pass
    return refused


def _attempt_budget(function):
    try:
        definition = registry.get(function)
    except TaskFunctionNotFound:
        return 1
    options = getattr(definition, "options", None)
    return getattr(options, "retries", 0) + 1


def _wake(alias, queues):
    """Wake workers for tasks made due outside ``enqueue`` (on commit, like an enqueue)."""
    ops = get_ops(alias)
    with ops.cursor() as cursor:
        ops.notify(cursor, queues)
    enqueue.wake_local_on_commit(alias)


def run_now(schedules, using=None):
    """Enqueue one run of each schedule at once; return the new task ids.

    A schedule whose function is not a declared task is left alone (logged).
    """
    refused = undeclared({schedule.name for schedule in schedules})
    if refused:
        logger.warning("not run, not a declared task: %s", ", ".join(sorted(refused)))
    return [scheduling.run_now(s, using=using) for s in schedules if s.name not in refused]


def expired_counts(using=None, now=None):
    """Return {status name: count} of the rows a prune would delete now."""
    rows = TaskQueue.objects.using(using or conf.DATABASE).expired(now or timezone.now())
    counts = rows.order_by().values("status").annotate(count=Count("id"))
    return {STATUS_NAMES.get(r["status"], str(r["status"])): r["count"] for r in counts}


def prune_all(using=None, now=None, batch=None):
    """Delete every finished row whose ttl lapsed before ``now``; return how many."""
    ops = get_ops(using or conf.DATABASE)
    now = now or timezone.now()
    total = 0
    # maintenance.prune stops after a time budget (it shares the worker's loop);
    # here nothing else waits, so go on until a pass finds nothing.
    while deleted := prune(ops, now, batch):
        total += deleted
    return total


__all__ = [
    "ALIVE_LEASES",
    "Snapshot",
    "expired_counts",
    "format_age",
    "prune_all",
    "retry_failed",
    "retry_failed_tasks",
    "run_now",
    "snapshot",
    "undeclared",
]
