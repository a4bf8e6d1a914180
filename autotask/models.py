"""The task table and its companions."""

from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .definitions.unique import ACTIVE, SCOPE_NAMES
from .definitions.unique import WAITING as WAITING_SCOPE
from .task import CANCELLED, CANCELLED_KEPT, DONE, ERROR, FINISHED, HELD, RUNNING, STATUS_NAMES, WAITING

# Scopes a failed row enters again when retried (a window's row never leaves its scope).
REJOINING_SCOPES = (ACTIVE, WAITING_SCOPE)

# The labels the admin shows (translatable); STATUS_NAMES keeps the stored words.
STATUS_LABELS = {
    WAITING: _("Waiting"),
    RUNNING: _("Running"),
    DONE: _("Done"),
    ERROR: _("Error"),
    CANCELLED: _("Cancelled"),
    HELD: _("Waiting for a slot"),
}
STATUS_CHOICES = [(value, STATUS_LABELS[value]) for value in STATUS_NAMES]

# Kinds of task rows.
KIND_DELAYED = "delayed"
KIND_PERIODIC = "periodic"
KIND_CRON = "cron"
KIND_FRAMEWORK = "framework"  # enqueued through django.tasks
KIND_CHOICES = [
    (KIND_DELAYED, _("Delayed")),
    (KIND_PERIODIC, _("Periodic")),
    (KIND_CRON, _("Cron")),
    (KIND_FRAMEWORK, _("Django task")),
]


class TaskQueueQuerySet(models.QuerySet):
    """The task rows, and the operator's actions on them, each named after its intent.

    The admin, the monitor and the management commands change rows through
    these verbs; the worker's hot path goes through the database driver.
    """

    def waiting(self):
        return self.filter(status=WAITING)

    def not_started(self):
        """WAITING rows and those HELD for a slot of their concurrency key: what a cancel may end."""
        return self.filter(status__in=(WAITING, HELD))

    def running(self):
        return self.filter(status=RUNNING)

    def finished(self):
        return self.filter(status__in=FINISHED)

    def failed(self):
        return self.filter(status=ERROR)

    def expired(self, now=None):
        """Finished rows whose result ttl has lapsed (safe to delete)."""
        return self.finished().filter(expires_at__lte=now or timezone.now())

    def failed_before(self, before):
        """ERROR rows that finished before ``before``, whatever their expiry."""
        return self.failed().filter(finished_at__lt=before)

    def cancel_waiting(self, now=None):
        """Cancel the WAITING (and HELD) rows (running ones are left alone); return how many.

        The one cancel policy: CANCELLED, finished ``now``, kept
        :data:`~autotask.task.CANCELLED_KEPT` before pruning deletes it.
        """
        now = now or timezone.now()
        waiting = self.not_started().order_by()
        cancelled = 0
        with transaction.atomic(using=self.db):
            # A workflow's step cancelled cancels its workflow (see WorkflowQuerySet.cancel).
            workflows = set(waiting.filter(workflow__isnull=False).values_list("workflow_id", flat=True))
            # Queue by queue: each update's count is what the statistics add (no count read apart).
            for queue in set(waiting.values_list("queue", flat=True).distinct()):
                count = waiting.filter(queue=queue).update(
                    status=CANCELLED, finished_at=now, expires_at=now + CANCELLED_KEPT
                )
                cancelled += count
                record_finished(self.db, queue, "cancelled", count, now)
            if workflows:
                Workflow.objects.using(self.db).filter(pk__in=workflows).cancel(now)
        return cancelled

    def stop_running(self, now=None):
        """Ask the RUNNING rows to stop; return how many running rows are asked now.

        Only the request is stored (``stop_requested_at``, kept from the first
        ask): the worker holding a row stops its task and records CANCELLED,
        unless the task finishes first.
        """
        now = now or timezone.now()
        return (
            self.running().order_by().update(stop_requested_at=Coalesce(F("stop_requested_at"), Value(now)))
        )

    def retry_failed(self, now=None, attempts_for=None, key_taken=None):
        """Put the ERROR rows back to WAITING, due ``now``; return how many.

        Each gets a fresh attempt budget of ``attempts_for(function)``
        attempts (default 1), counted on from the attempts it already made.
        A unique task whose key another task holds meanwhile stays ERROR (the
        unique index refuses it): its id is appended to ``key_taken`` if given.
        """
        now = now or timezone.now()
        failed = self.failed().order_by()
        # Rows that would enter their key's scope again go one by one, each in a savepoint.
        rejoining = Q(unique_key__isnull=False, unique_scope__in=REJOINING_SCOPES)
        # One query says which functions have failed rows, and which have rows that rejoin a scope.
        found = set(failed.values_list("function", "unique_scope").distinct())
        keyed = {function for function, scope in found if scope in REJOINING_SCOPES}
        retried = 0
        for function in sorted({function for function, _scope in found}):
            budget = attempts_for(function) if attempts_for else 1
            changes = {
                # A task with a concurrency key waits for a slot again (an admission lets it run).
                "status": Case(When(concurrency_key__isnull=False, then=Value(HELD)), default=Value(WAITING)),
                "scheduled_at": now,
                "started_at": None,
                "finished_at": None,
                "expires_at": None,
                "worker_id": "",
                "lease_expires_at": None,
                "stop_requested_at": None,
                "max_attempts": Greatest(F("max_attempts"), F("attempts") + budget),
            }
            rows = failed.filter(function=function)
            if function not in keyed:
                retried += rows.update(**changes)
                continue
            retried += rows.exclude(rejoining).update(**changes)
            for pk in rows.filter(rejoining).values_list("pk", flat=True):
                try:
                    with transaction.atomic(using=self.db):
                        retried += rows.filter(pk=pk).update(**changes)
                except IntegrityError:
                    if key_taken is not None:
                        key_taken.append(pk)
        return retried

    def delete_finished(self):
        """Delete the finished (DONE, ERROR, CANCELLED) rows; return how many."""
        # Nothing references a task row, so Django deletes them in one statement.
        deleted, _ = self.finished().order_by().delete()
        return deleted

    def delete_in_batches(self, batch):
        """Delete these rows ``batch`` at a time; return how many.

        Stops early when a batch finds fewer of its rows than it selected
        (changed meanwhile, e.g. retried: no longer ours to delete).
        """
        total = 0
        # Ids first, then a delete by id that checks again: portable (MySQL refuses LIMIT in
        # a subquery of the table it deletes from) and one bounded statement per batch.
        while ids := list(self.order_by().values_list("id", flat=True)[:batch]):
            deleted, _ = self.filter(id__in=ids).order_by().delete()
            total += deleted
            if deleted < len(ids):
                break
        return total


def record_finished(using, queue, outcome, count, now):
    """Count ``count`` tasks of ``queue`` that ended ``outcome`` at ``now`` outside a worker's run.

    Cancelled, or recovered from a lost worker: a minute row of no worker
    (``worker_id`` ''), counted with increments; no durations.
    """
    if not count:
        return
    figures = {"count": count}
    minute = now.replace(second=0, microsecond=0)
    TaskStats.objects.using(using).add(
        {"minute": minute, "worker_id": "", "queue": queue, "outcome": outcome}, figures
    )
    TaskStatsTotal.objects.using(using).add({"queue": queue, "outcome": outcome}, figures)


class TaskQueue(models.Model):
    """One stored call of a task function."""

    function = models.CharField(
        verbose_name=_("function"), max_length=255, help_text=_("Dotted path of the task function.")
    )
    kind = models.CharField(verbose_name=_("kind"), max_length=16, choices=KIND_CHOICES, default=KIND_DELAYED)
    queue = models.CharField(verbose_name=_("queue"), max_length=100, default="default")
    priority = models.SmallIntegerField(
        verbose_name=_("priority"), default=0, help_text=_("Higher runs first.")
    )
    status = models.SmallIntegerField(verbose_name=_("status"), choices=STATUS_CHOICES, default=WAITING)
    args = models.TextField(
        verbose_name=_("args"), default="", help_text=_("Encoded positional and keyword arguments.")
    )
    # NULL (no result yet) differs from any encoded value, '' included.
    result = models.TextField(  # noqa: DJ001
        verbose_name=_("result"), null=True, blank=True, help_text=_("Encoded return value.")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    scheduled_at = models.DateTimeField(
        verbose_name=_("scheduled at"), default=timezone.now, help_text=_("Not run before this.")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)
    expires_at = models.DateTimeField(
        verbose_name=_("expires at"), null=True, blank=True, help_text=_("Deleted after this.")
    )
    ttl = models.FloatField(verbose_name=_("ttl"), default=300, help_text=_("Seconds the outcome is kept."))
    attempts = models.PositiveIntegerField(
        verbose_name=_("attempts"), default=0, help_text=_("Runs started so far.")
    )
    max_attempts = models.PositiveIntegerField(
        verbose_name=_("max attempts"), default=1, help_text=_("1 + retries.")
    )
    options = models.JSONField(
        verbose_name=_("options"), default=dict, blank=True, help_text=_("Retry and timeout options.")
    )
    worker_id = models.CharField(verbose_name=_("worker id"), max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(verbose_name=_("lease expires at"), null=True, blank=True)
    # Set by DelayedTask.stop() (or the admin's Stop) on a running task: the
    # worker holding it stops it and records CANCELLED.  Never cleared while the
    # row runs, so a worker that claims it after a recovery stops it too.
    stop_requested_at = models.DateTimeField(
        verbose_name=_("stop requested at"),
        null=True,
        blank=True,
        help_text=_("Asked to stop while running."),
    )
    error_message = models.TextField(verbose_name=_("error message"), blank=True, default="")
    traceback = models.TextField(verbose_name=_("traceback"), blank=True, default="")
    history = models.JSONField(
        verbose_name=_("history"),
        default=list,
        blank=True,
        help_text=_("One entry per attempt: worker, times, error."),
    )
    # No constraint in the database: its trigger runs for every enqueued row,
    # scheduled or not (a third of a bulk enqueue's time on PostgreSQL), and
    # the ORM sets runs' schedule to NULL when a schedule is deleted anyway.
    # The index, on scheduled runs only, is created per database by migration 0003.
    schedule = models.ForeignKey(
        "Schedule",
        verbose_name=_("schedule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_constraint=False,
        db_index=False,
    )

    # Unique tasks: the key (namespaced by the function) and its scope (1 active,
    # 2 waiting, 3 window); a unique index over the rows in scope, created per
    # database by migration 0004, keeps a second one out.
    unique_key = models.CharField(  # noqa: DJ001
        verbose_name=_("unique key"), max_length=255, null=True, blank=True
    )
    unique_scope = models.SmallIntegerField(
        verbose_name=_("unique scope"),
        null=True,
        blank=True,
        choices=[(code, name.capitalize()) for code, name in SCOPE_NAMES.items()],
    )
    # Concurrency limits: the key (shared by every task naming it) and the task's
    # limit.  A row with a key is stored HELD; an admission (autotask.db.flow)
    # makes it WAITING while fewer than the limit of its key are WAITING or RUNNING.
    concurrency_key = models.CharField(  # noqa: DJ001
        verbose_name=_("concurrency key"), max_length=255, null=True, blank=True
    )
    concurrency_limit = models.PositiveIntegerField(
        verbose_name=_("concurrency limit"),
        null=True,
        blank=True,
        help_text=_("At most this many tasks with the key run at once."),
    )

    # Progress and metadata a running task reports (CurrentTask.set_progress,
    # set_metadata): written by its worker a few times a second at most.
    progress = models.JSONField(verbose_name=_("progress"), null=True, blank=True)
    metadata = models.JSONField(verbose_name=_("metadata"), null=True, blank=True)
    # The workflow (chain, group, callback) this row is a step of; NULL for a plain
    # task.  Written after the insert by the workflow's enqueue, so the plain
    # enqueue's statements stay as they were; the index holds the members only
    # (MySQL and MariaDB, without partial indexes: every row).
    workflow = models.ForeignKey(
        "Workflow",
        verbose_name=_("workflow"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="steps",
        db_constraint=False,
        db_index=False,
    )

    objects = TaskQueueQuerySet.as_manager()

    class Meta:
        verbose_name = _("Task")
        verbose_name_plural = _("Tasks")
        # Claim, recovery and pruning indexes are created per database vendor by
        # migration 0002 (partial indexes where the database has them).
        indexes = [
            models.Index(
                fields=["workflow"], name="autotask_workflow_idx", condition=Q(workflow__isnull=False)
            )
        ]

    def __str__(self):
        return f"{self.function} #{self.pk} ({self.status_name})"

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def is_finished(self):
        return self.status in FINISHED


class WorkflowQuerySet(models.QuerySet):
    def cancel(self, now=None):
        """Cancel these running workflows: their waiting steps too, no later stage runs; return how many.

        Steps already running finish, their outcomes counted by no workflow.
        """
        now = now or timezone.now()
        with transaction.atomic(using=self.db):
            ids = list(self.filter(status=RUNNING).order_by("pk").values_list("pk", flat=True))
            if not ids:
                return 0
            count = (
                Workflow.objects.using(self.db)
                .filter(pk__in=ids, status=RUNNING)
                .update(
                    status=CANCELLED,
                    finished_at=now,
                    expires_at=now + CANCELLED_KEPT,
                    error_message="cancelled before it ended",
                )
            )
            TaskQueue.objects.using(self.db).filter(workflow_id__in=ids).cancel_waiting(now)
        return count


class Workflow(models.Model):
    """A chain, group or callback: its stages, and how many steps of the current one are left.

    Stage 0's steps are task rows from the start; each later stage is stored
    here (``stages``) until the transaction that finishes the last step of
    the stage before it (``remaining`` down to 0, one row update: exactly
    once) enqueues it with that stage's results.  See autotask.enqueue.workflows.
    """

    status = models.SmallIntegerField(verbose_name=_("status"), choices=STATUS_CHOICES, default=RUNNING)
    name = models.CharField(verbose_name=_("name"), max_length=255, blank=True, default="")
    # One entry per stage: {"size": steps, "steps": [step, ...]}; a step is what
    # its task row needs (function, encoded args, queue, ...), kept for the
    # stages not enqueued yet and its function name for the others.
    stages = models.JSONField(verbose_name=_("stages"), default=list)
    stage = models.PositiveIntegerField(verbose_name=_("stage"), default=0, help_text=_("The current stage."))
    remaining = models.PositiveIntegerField(
        verbose_name=_("remaining"), default=0, help_text=_("Steps of the current stage not finished.")
    )
    failed = models.PositiveIntegerField(
        verbose_name=_("failed"), default=0, help_text=_("Steps of the current stage that failed.")
    )
    ttl = models.FloatField(
        verbose_name=_("ttl"), default=300, help_text=_("Seconds it is kept once finished.")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)
    expires_at = models.DateTimeField(
        verbose_name=_("expires at"), null=True, blank=True, help_text=_("Deleted after this.")
    )
    error_message = models.TextField(verbose_name=_("error message"), blank=True, default="")

    objects = WorkflowQuerySet.as_manager()

    class Meta:
        verbose_name = _("Workflow")
        verbose_name_plural = _("Workflows")

    def __str__(self):
        return f"{self.name or 'workflow'} #{self.pk} ({STATUS_NAMES.get(self.status, self.status)})"

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))


class FlowKey(models.Model):
    """A concurrency or rate key: the row its admissions lock (one at a time per key).

    Written by autotask.db.flow: ``kind`` "concurrency" or "rate", the
    limit last declared for it and, for a rate, the window in seconds.
    """

    key = models.CharField(verbose_name=_("key"), max_length=300, primary_key=True)
    limit = models.PositiveIntegerField(verbose_name=_("limit"), null=True, blank=True)
    window = models.FloatField(verbose_name=_("window (seconds)"), null=True, blank=True)

    class Meta:
        verbose_name = _("Flow key")
        verbose_name_plural = _("Flow keys")

    def __str__(self):
        return self.key


class RateStart(models.Model):
    """One start of a rate-limited task: the sliding window's ledger (pruned as windows pass)."""

    key = models.CharField(verbose_name=_("rate key"), max_length=255)
    started_at = models.DateTimeField(verbose_name=_("started at"))

    class Meta:
        verbose_name = _("Rate-limited start")
        verbose_name_plural = _("Rate-limited starts")
        indexes = [models.Index(fields=["key", "started_at"], name="autotask_rate_start_idx")]

    def __str__(self):
        return f"{self.key} {self.started_at}"


class Schedule(models.Model):
    """A periodic or cron task: one row per function, one run per occurrence."""

    name = models.CharField(
        verbose_name=_("name"), max_length=255, unique=True, help_text=_("Dotted path of the function.")
    )
    kind = models.CharField(verbose_name=_("kind"), max_length=16, choices=KIND_CHOICES[1:3])
    spec = models.CharField(
        verbose_name=_("spec"), max_length=255, help_text=_("Seconds, or a standard cron expression.")
    )
    timezone = models.CharField(verbose_name=_("timezone"), max_length=64, blank=True, default="")
    queue = models.CharField(verbose_name=_("queue"), max_length=100, default="default")
    next_run_at = models.DateTimeField(
        verbose_name=_("next run at"), help_text=_("The next occurrence to enqueue.")
    )
    last_run_at = models.DateTimeField(verbose_name=_("last run at"), null=True, blank=True)
    last_status = models.SmallIntegerField(
        verbose_name=_("last status"), choices=STATUS_CHOICES, null=True, blank=True
    )
    last_error = models.TextField(verbose_name=_("last error"), blank=True, default="")
    missing = models.BooleanField(
        verbose_name=_("missing"), default=False, help_text=_("The function is gone from the code.")
    )
    # A paused schedule does not fire; resumed, its next run is the next occurrence after
    # the resume (no burst of the runs missed meanwhile): see autotask.maintenance.pauses.
    paused = models.BooleanField(
        verbose_name=_("paused"), default=False, help_text=_("Paused: no run is enqueued until resumed.")
    )
    paused_at = models.DateTimeField(verbose_name=_("paused at"), null=True, blank=True)
    paused_by = models.CharField(
        verbose_name=_("paused by"), max_length=150, blank=True, default="", help_text=_("Who paused it.")
    )
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Schedule")
        verbose_name_plural = _("Schedules")

    def __str__(self):
        return f"{self.name} ({self.kind}: {self.spec})"


class PausedQueue(models.Model):
    """A paused queue: no worker claims its tasks while this row exists.

    Every claim statement excludes the queues named here (see
    ``Driver._queue_filter``); deleting the row resumes the queue.  A name
    may be paused before any task of that queue exists.
    """

    name = models.CharField(
        verbose_name=_("name"), max_length=100, unique=True, help_text=_("The queue's name.")
    )
    paused_at = models.DateTimeField(verbose_name=_("paused at"), default=timezone.now)
    paused_by = models.CharField(
        verbose_name=_("paused by"), max_length=150, blank=True, default="", help_text=_("Who paused it.")
    )

    class Meta:
        verbose_name = _("Paused queue")
        verbose_name_plural = _("Paused queues")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Worker(models.Model):
    """A live worker process, kept fresh by its heartbeat (for display and health checks)."""

    worker_id = models.CharField(verbose_name=_("worker id"), max_length=64, unique=True)
    hostname = models.CharField(verbose_name=_("hostname"), max_length=255)
    pid = models.IntegerField(verbose_name=_("pid"))
    queues = models.CharField(verbose_name=_("queues"), max_length=255, blank=True, default="")
    concurrency = models.PositiveIntegerField(verbose_name=_("concurrency"), default=1)
    started_at = models.DateTimeField(verbose_name=_("started at"), default=timezone.now)
    last_seen = models.DateTimeField(verbose_name=_("last seen"), default=timezone.now)

    class Meta:
        verbose_name = _("Worker")
        verbose_name_plural = _("Workers")

    def __str__(self):
        return f"{self.hostname}:{self.pid}"


# -- statistics (written by the workers, read by the dashboard and the metrics) --

# Upper bounds (milliseconds) of the latency histogram buckets; a last bucket
# holds what is slower than the last bound.  Bucket ``i`` counts values in
# (bound[i-1], bound[i]]: not cumulative, so rows add up column by column.
HISTOGRAM_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)
HISTOGRAM_BUCKETS = len(HISTOGRAM_BOUNDS_MS) + 1
# The two measures: pickup delay (started - due) and run time (finished - started).
MEASURES = ("pickup", "run")
# Outcomes counted: a run that ended DONE, ERROR or WAITING again (retried),
# and tasks cancelled before they ran.
STATS_OUTCOMES = ("done", "error", "retried", "cancelled")


def bucket_fields(measure):
    """Return the column names of ``measure``'s histogram, fastest bucket first."""
    return [f"{measure}_b{index}" for index in range(HISTOGRAM_BUCKETS)]


FIGURE_FIELDS = ["count", "pickup_ms_sum", "run_ms_sum", *bucket_fields("pickup"), *bucket_fields("run")]


class StatsQuerySet(models.QuerySet):
    def add(self, key, figures):
        """Add ``figures`` ({field: value}) to the row of ``key`` ({field: value}), in the database."""
        increments = {name: F(name) + value for name, value in figures.items() if value}
        rows = self.filter(**key)
        if not increments or rows.update(**increments):
            return
        # The row's first figures: a row of zeros (of racing processes, the unique
        # key keeps one and ignores the others), then the same increment.
        self.bulk_create([self.model(**key)], ignore_conflicts=True)
        rows.update(**increments)


class StatsFigures(models.Model):
    """What was counted: tasks, and the histograms of their pickup delay and run time."""

    count = models.BigIntegerField(default=0)
    pickup_ms_sum = models.FloatField(default=0.0)
    run_ms_sum = models.FloatField(default=0.0)

    objects = StatsQuerySet.as_manager()

    class Meta:
        abstract = True


# The bucket columns, one per bucket and measure (summed by the database, so columns, not JSON).
for _measure in MEASURES:
    for _name in bucket_fields(_measure):
        StatsFigures.add_to_class(_name, models.BigIntegerField(default=0))


class TaskStats(StatsFigures):
    """One minute of one worker's finished tasks of one queue and outcome.

    Each worker writes only its own rows, so workers never wait on each
    other's; the dashboard sums them.  Pruned after ``AUTOTASK_STATS_KEEP``.
    """

    minute = models.DateTimeField(help_text="Start of the minute.")
    worker_id = models.CharField(max_length=64)
    queue = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16)

    class Meta:
        verbose_name = "Task statistics"
        verbose_name_plural = "Task statistics"
        constraints = [
            # Also the index of the dashboard's range reads and of pruning (minute leads).
            models.UniqueConstraint(
                fields=["minute", "worker_id", "queue", "outcome"], name="autotask_stats_minute_key"
            )
        ]

    def __str__(self):
        return f"{self.minute:%Y-%m-%d %H:%M} {self.worker_id} {self.queue} {self.outcome}: {self.count}"


class TaskStatsTotal(StatsFigures):
    """Every task counted since the table was created, per queue and outcome (never pruned).

    Monotonic, for Prometheus counters and histograms; each worker adds what it
    counted with an increment in the database (``count = count + n``).
    """

    queue = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16)

    class Meta:
        verbose_name = "Task statistics total"
        verbose_name_plural = "Task statistics totals"
        constraints = [models.UniqueConstraint(fields=["queue", "outcome"], name="autotask_stats_total_key")]

    def __str__(self):
        return f"{self.queue} {self.outcome}: {self.count}"


__all__ = [
    "CANCELLED",
    "DONE",
    "ERROR",
    "HELD",
    "RUNNING",
    "WAITING",
    "FlowKey",
    "PausedQueue",
    "RateStart",
    "Schedule",
    "TaskQueue",
    "TaskStats",
    "TaskStatsTotal",
    "Worker",
    "Workflow",
]
