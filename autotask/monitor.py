"""What the queue looks like now, and the operator's actions that need more than a row verb.

Shared by the admin, ``manage.py autotask_status`` and ``autotask_clean``
so that every view of the queue counts the same way.  The row changes
themselves are verbs of ``TaskQueue.objects`` (:mod:`autotask.models`).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from . import enqueue, tracing
from .conf import conf
from .db import get_ops, pooling
from .db.base import NewTask
from .definitions import registry
from .definitions.unique import SCOPE_NAMES
from .exceptions import NotADeclaredTask, TaskFunctionNotFound
from .maintenance import scheduling
from .maintenance.pruning import prune
from .models import (
    FIGURE_FIELDS,
    HISTOGRAM_BOUNDS_MS,
    STATS_OUTCOMES,
    FlowKey,
    PausedQueue,
    RateStart,
    Schedule,
    TaskQueue,
    TaskStats,
    Worker,
    Workflow,
    bucket_fields,
)
from .task import ERROR, FINISHED, HELD, RUNNING, STATUS_NAMES, WAITING
from .timeutil import aware_utc, iso_or_value, stored

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
    finished_last_hour: dict = field(default_factory=dict)  # outcome -> count, from the statistics
    workers: list = field(default_factory=list)  # dicts, alive ones first
    schedules: list = field(default_factory=list)  # dicts, by next run (SCHEDULES_SHOWN at most)
    schedules_total: int = 0  # schedules in the table, listed or not
    paused: dict = field(default_factory=lambda: {"queues": [], "schedules": []})  # dicts, by name
    unique: dict = field(default_factory=dict)  # scope name -> waiting or running tasks holding a key
    database: dict = field(default_factory=dict)  # alias, vendor, pooler, listen: see db.pooling.describe
    stopping: int = 0  # running tasks asked to stop (DelayedTask.stop(), the admin's Stop) not ended yet
    # Concurrency keys (limit, running, admitted, held) and rate keys (limit, window, starts in it).
    limits: dict = field(default_factory=lambda: {"concurrency": [], "rates": []})

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
            "finished_last_hour": self.finished_last_hour,
            "worker_timeout": self.worker_timeout,
            "workers_alive": len(self.workers_alive),
            "workers": [_iso_values(w) for w in self.workers],
            "schedules": [_iso_values(s) for s in self.schedules],
            "paused": {kind: [_iso_values(p) for p in rows] for kind, rows in self.paused.items()},
            "unique": self.unique,
            "database": self.database,
            "stopping": self.stopping,
            "limits": self.limits,
        }


def snapshot(using=None, now=None, worker_timeout=None, with_limits=True):
    """Read the queue's state in a handful of queries (none per task).

    ``with_limits``: also read the concurrency and rate keys (three queries
    more; the admin's summary leaves them out, a task's page shows its own).
    """

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
    snap.stopping = tasks.filter(status=RUNNING, stop_requested_at__isnull=False).count()
    if with_limits:
        snap.limits = limits(using, now)
    snap.finished_last_hour = finished_since(using, since)
    snap.workers = _workers(using, alive_after(now, timeout))
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
            "paused": s.paused,
            "overdue": (late := overdue_by(s, now)) is not None,
            "overdue_seconds": late,
        }
        for s in schedules
    ]
    snap.schedules_total = len(snap.schedules)
    if snap.schedules_total == SCHEDULES_SHOWN:  # the list was cut: count them all
        snap.schedules_total = Schedule.objects.using(using).count()
    snap.paused = _paused(using)
    snap.database = pooling.describe(connections[using])
    return snap


PROGRESS_SHOWN = 50  # running tasks with their progress in autotask_status --json


def activity(using=None):
    """What runs now, beyond the counts: running tasks' progress, and workflows per state (two queries)."""
    using = using or conf.DATABASE
    running = (
        TaskQueue.objects.using(using)
        .filter(status=RUNNING, progress__isnull=False)
        .order_by("id")
        .values("id", "function", "queue", "worker_id", "progress", "metadata", "workflow_id")[
            :PROGRESS_SHOWN
        ]
    )
    workflows = dict.fromkeys((STATUS_NAMES[s] for s in (RUNNING, *FINISHED)), 0)
    for row in Workflow.objects.using(using).order_by().values("status").annotate(count=Count("id")):
        workflows[STATUS_NAMES.get(row["status"], str(row["status"]))] = row["count"]
    return {"running_progress": list(running), "workflows": workflows}


def finished_since(using, since):
    """Return {outcome: tasks} counted by the workers' statistics since ``since`` (minute rows)."""
    counts = dict.fromkeys(STATS_OUTCOMES, 0)
    rows = (
        TaskStats.objects.using(using)
        .filter(minute__gte=stored(aware_utc(since).replace(second=0, microsecond=0)))
        .order_by()
        .values("outcome")
        .annotate(total=Sum("count"))
    )
    for row in rows:
        if row["outcome"] in counts:
            counts[row["outcome"]] = row["total"]
    return counts


def _workers(using, threshold):
    """Return the worker rows as dicts, the last seen first; ``alive``: seen after ``threshold``."""
    workers = Worker.objects.using(using).order_by("-last_seen", "worker_id")
    return [
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


def health(using=None, now=None, worker_timeout=None, max_wait=None, require_worker=True):
    """Return the verdict of ``autotask_status`` (same thresholds, same problems), JSON-ready.

    Reads only what the verdict needs: the worker rows and the oldest due
    waiting task (one probe of the due index); cheap enough for a probe every second.
    """
    using = using or conf.DATABASE
    now = now or timezone.now()
    timeout = worker_timeout if worker_timeout is not None else ALIVE_LEASES * conf.LEASE_SECONDS
    snap = Snapshot(now=now, worker_timeout=float(timeout))
    snap.workers = _workers(using, alive_after(now, timeout))
    snap.oldest_waiting = _oldest_waiting(TaskQueue.objects.using(using), now)
    problems = snap.problems(max_wait=max_wait, require_worker=require_worker)
    return {
        "healthy": not problems,
        "problems": problems,
        "now": iso_or_value(now),
        "workers_alive": len(snap.workers_alive),
        "worker_timeout": snap.worker_timeout,
        "oldest_waiting_seconds": snap.oldest_waiting["age"] if snap.oldest_waiting else None,
    }


def _paused(using):
    """What is paused: {"queues": [...], "schedules": [...]}, each a dict with name, when, by whom."""
    fields = ("name", "paused_at", "paused_by")
    return {
        "queues": list(PausedQueue.objects.using(using).order_by("name").values(*fields)),
        "schedules": list(Schedule.objects.using(using).filter(paused=True).order_by("name").values(*fields)),
    }


def _unique_counts(tasks):
    """{scope name: count} of the waiting or running tasks that hold a unique key (every scope)."""
    counts = dict.fromkeys(SCOPE_NAMES.values(), 0)
    keyed = tasks.filter(unique_key__isnull=False, status__in=(WAITING, RUNNING)).order_by()
    for row in keyed.values("unique_scope").annotate(count=Count("id")):
        counts[SCOPE_NAMES.get(row["unique_scope"], str(row["unique_scope"]))] = row["count"]
    return counts


LIMIT_KEYS_SHOWN = 100  # concurrency or rate keys listed (the busiest first)


def limits(using=None, now=None):
    """The concurrency and rate keys in use: {"concurrency": [...], "rates": [...]}.

    A concurrency key: its limit (the smallest among its tasks), its tasks
    running (claimed), admitted (waiting to be claimed: they hold a slot) and
    held (waiting for a slot).  A rate key: its limit, window (seconds) and
    the starts in the window that ends ``now``.
    """
    using = using or conf.DATABASE
    now = now or timezone.now()
    tasks = TaskQueue.objects.using(using).order_by()
    found: dict[str, dict] = {}
    # Two reads, each through its partial index (autotask.db.flow): the slots held, and the tasks held.
    holding = tasks.filter(concurrency_key__isnull=False, status__in=(WAITING, RUNNING))
    figures = {"count": Count("id"), "limit": Min("concurrency_limit")}
    rows = [
        *holding.values("concurrency_key", "status").annotate(**figures),
        *tasks.filter(status=HELD).values("concurrency_key", "status").annotate(**figures),
    ]
    names = {RUNNING: "running", WAITING: "admitted", HELD: "held"}
    for row in rows:
        entry = found.setdefault(
            row["concurrency_key"],
            {"key": row["concurrency_key"], "limit": row["limit"], "running": 0, "admitted": 0, "held": 0},
        )
        entry[names[row["status"]]] = row["count"]
        entry["limit"] = min(entry["limit"], row["limit"])
    busiest = sorted(found.values(), key=lambda e: (-e["held"], -e["running"], e["key"]))
    concurrency = busiest[:LIMIT_KEYS_SHOWN]
    rates = []
    flow = FlowKey.objects.using(using).filter(key__startswith="r:", window__isnull=False).order_by("key")
    for row in flow[:LIMIT_KEYS_SHOWN]:
        key = row.key[2:]
        since = now - timedelta(seconds=row.window)
        started = RateStart.objects.using(using).filter(key=key, started_at__gt=since).count()
        rates.append({"key": key, "limit": row.limit, "window": row.window, "started_in_window": started})
    return {"concurrency": concurrency, "rates": rates}


def slots_held(key, using=None):
    """How many tasks hold a slot of the concurrency ``key`` (admitted or running)."""
    return (
        TaskQueue.objects.using(using or conf.DATABASE)
        .filter(concurrency_key=key, status__in=(WAITING, RUNNING))
        .count()
    )


def overdue_by(schedule, now):
    """Seconds a schedule's next run is past due, beyond the scheduler's tolerance; else None.

    A worker enqueues a due run within about a second (its scheduler ticks
    every second); a next run more than OVERDUE_AFTER seconds in the past
    means no worker is running the schedules, not that the run is upcoming.
    """
    if schedule.missing or schedule.paused:
        return None
    late = (now - schedule.next_run_at).total_seconds()
    return late if late > OVERDUE_AFTER else None


def _oldest_waiting(tasks, now):
    # Only due tasks count: one scheduled for tomorrow is not late.
    row = (
        tasks.filter(status=WAITING, scheduled_at__lte=now)
        # A paused queue's tasks wait on purpose: not a sign of missing workers.
        .exclude(queue__in=PausedQueue.objects.using(tasks.db).values("name"))
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


def format_duration(seconds):
    """Return a short human reading of a run's duration: '8 ms', '4.2 s', '45 s', '2 min 5 s', '3 h 5 min'."""
    seconds = max(0.0, float(seconds))
    if seconds < 0.9995:  # below what rounds to "1000 ms"
        return f"{seconds * 1000:.0f} ms"
    if seconds < 59.5 or seconds >= 3600:
        return format_age(seconds)
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


# -- the dashboard -------------------------------------------------------

# window: (seconds shown, seconds per point).  A day in ten-minute points keeps
# the chart readable (144 points) and the answer small.
WINDOWS = {"hour": (3600, 60), "day": (24 * 3600, 600)}
RUNNING_SHOWN = 500  # running tasks listed under the workers, at most


def dashboard(window="hour", using=None, now=None):
    """Return the dashboard's figures for the last hour or day, JSON-ready.

    A few indexed queries, whatever the size of the task table: the charts
    read the per-minute statistics the workers write (task rows are pruned
    soon after they finish), queue depth only WAITING and RUNNING rows.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(map(repr, WINDOWS))}, not {window!r}")
    using = using or conf.DATABASE
    now = now or timezone.now()
    span, step = WINDOWS[window]
    return {
        "now": iso_or_value(now),
        "window": window,
        "step_seconds": step,
        "series": series(using, now, span, step),
        "depth": queue_depth(using, now),
        "workers": workers_running(using, now),
        "schedules": schedules_next(using),
    }


def schedules_next(using):
    """Return the schedules, by next run (SCHEDULES_SHOWN at most)."""
    schedules = Schedule.objects.using(using).order_by("missing", "next_run_at", "name")
    return [
        {
            "id": s.pk,
            "name": s.name,
            "kind": s.kind,
            "spec": s.spec,
            "next_run_at": iso_or_value(s.next_run_at),
            "last_run_at": iso_or_value(s.last_run_at),
            "last_status": STATUS_NAMES.get(s.last_status) if s.last_status is not None else None,
        }
        for s in schedules[:SCHEDULES_SHOWN]
    ]


def bucket_starts(now, span, step):
    """Return the starts of the ``span // step`` buckets of ``step`` seconds up to now's, oldest first."""
    epoch = datetime(1970, 1, 1, tzinfo=aware_utc(now).tzinfo)
    current = epoch + timedelta(seconds=(aware_utc(now) - epoch).total_seconds() // step * step)
    count = span // step
    return [current - timedelta(seconds=step * (count - 1 - index)) for index in range(count)]


def series(using, now, span, step):
    """Return the charts' series: outcomes per bucket and pickup/run percentiles, from TaskStats."""
    starts = bucket_starts(now, span, step)
    counts = {outcome: [0] * len(starts) for outcome in STATS_OUTCOMES}
    histograms = {
        measure: [[0] * (len(HISTOGRAM_BOUNDS_MS) + 1) for _ in starts] for measure in ("pickup", "run")
    }
    rows = (
        TaskStats.objects.using(using)
        .filter(minute__gte=stored(starts[0]))
        .order_by()
        .values("minute", "outcome")
        .annotate(**{f"total_{name}": Sum(name) for name in FIGURE_FIELDS})
    )
    for row in rows:
        index = int((aware_utc(row["minute"]) - starts[0]).total_seconds() // step)
        if not 0 <= index < len(starts) or row["outcome"] not in counts:
            continue  # a worker's clock ahead of this one's, or an outcome of a later version
        counts[row["outcome"]][index] += row["total_count"]
        for measure, buckets in histograms.items():
            for position, name in enumerate(bucket_fields(measure)):
                buckets[index][position] += row[f"total_{name}"]
    result = {"t": [iso_or_value(start) for start in starts], **counts}
    for measure, buckets in histograms.items():
        result[f"{measure}_p50_ms"] = [percentile(b, 0.50) for b in buckets]
        result[f"{measure}_p95_ms"] = [percentile(b, 0.95) for b in buckets]
    return result


def percentile(buckets, fraction):
    """Return the ``fraction`` quantile (ms) of a histogram of HISTOGRAM_BOUNDS_MS buckets; None if empty.

    Interpolated linearly inside its bucket; past the last bound, the last bound.
    """
    total = sum(buckets)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index == len(HISTOGRAM_BOUNDS_MS):
                return float(HISTOGRAM_BOUNDS_MS[-1])
            lower = HISTOGRAM_BOUNDS_MS[index - 1] if index else 0
            upper = HISTOGRAM_BOUNDS_MS[index]
            return round(lower + (upper - lower) * (rank - seen) / count, 3)
        seen += count
    return float(HISTOGRAM_BOUNDS_MS[-1])  # not reached: rank <= total


def queue_depth(using, now):
    """Return per queue: tasks waiting, due among them, running, and the age of the oldest due one.

    Reads only WAITING and RUNNING rows, each status through its partial index.
    """
    tasks = TaskQueue.objects.using(using).order_by()
    due = Q(scheduled_at__lte=now)
    waiting = (
        tasks.filter(status=WAITING)
        .values("queue")
        .annotate(waiting=Count("id"), due=Count("id", filter=due), oldest=Min("scheduled_at", filter=due))
    )
    running = tasks.filter(status=RUNNING).values("queue").annotate(running=Count("id"))
    depth = {}
    for row in waiting:
        oldest = row["oldest"]
        depth[row["queue"]] = {
            "queue": row["queue"],
            "waiting": row["waiting"],
            "due": row["due"],
            "running": 0,
            "oldest_due_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else None,
        }
    for row in running:
        entry = depth.setdefault(
            row["queue"],
            {"queue": row["queue"], "waiting": 0, "due": 0, "running": 0, "oldest_due_seconds": None},
        )
        entry["running"] = row["running"]
    return [depth[queue] for queue in sorted(depth)]


WORKER_FIELDS = ("worker_id", "hostname", "pid", "queues", "concurrency", "last_seen")


def workers_running(using, now):
    """Return the workers alive, each with the tasks it is running (claimed ahead: ``started_at`` None)."""
    workers = [w for w in _workers(using, alive_after(now)) if w["alive"]]
    workers.sort(key=lambda w: (w["hostname"], w["pid"], w["worker_id"]))  # steady on the page
    running = {w["worker_id"]: [] for w in workers}
    rows = (
        TaskQueue.objects.using(using)
        .filter(status=RUNNING, worker_id__in=list(running))
        .order_by()  # no sort: the rows come off the partial index of RUNNING rows
        .values("id", "function", "started_at", "worker_id", "stop_requested_at")[:RUNNING_SHOWN]
    )
    for row in rows:
        task = {"id": row["id"], "function": row["function"], "started_at": iso_or_value(row["started_at"])}
        if row["stop_requested_at"] is not None:  # asked to stop (DelayedTask.stop(), the admin's Stop)
            task["stop_requested_at"] = iso_or_value(row["stop_requested_at"])
        running[row["worker_id"]].append(task)
    return [
        {
            **{name: iso_or_value(w[name]) for name in WORKER_FIELDS},
            "running": sorted(running[w["worker_id"]], key=lambda task: task["id"]),
        }
        for w in workers
    ]


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


def run_again(task, using=None, now=None):
    """Enqueue a new task with ``task``'s function, arguments and options; return its id.

    ``task`` is a TaskQueue row, usually a finished one.  The new task is due
    now, on the same queue with the same priority, ttl and stored options
    (timeout, back-off, failed ttl), and a run of the same schedule if it was
    one.  Its attempt budget is fresh, as a retry's: the task's ``retries`` + 1
    (one attempt when the function cannot be imported here).  Raise
    :class:`~autotask.exceptions.NotADeclaredTask` when the function is not a
    declared task: a worker would refuse it.
    """
    if undeclared({task.function}):
        raise NotADeclaredTask(f"{task.function} is not a declared task; a worker would refuse it")
    now = now or timezone.now()
    row = NewTask(
        function=task.function,
        args=task.args,  # the stored encoding as is: nothing is decoded or re-encoded
        created_at=now,
        scheduled_at=now,
        kind=task.kind,
        queue=task.queue,
        priority=task.priority,
        ttl=task.ttl,
        max_attempts=_attempt_budget(task.function),
        # A run of its own: it never continues the old run's trace.
        options={k: v for k, v in (task.options or {}).items() if k != tracing.CARRIER},
        schedule_id=task.schedule_id,
    )
    return enqueue.insert([row], using=using or task._state.db or conf.DATABASE)[0]


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
    "WINDOWS",
    "Snapshot",
    "dashboard",
    "expired_counts",
    "format_age",
    "format_duration",
    "health",
    "prune_all",
    "retry_failed",
    "retry_failed_tasks",
    "run_again",
    "run_now",
    "snapshot",
    "undeclared",
]
