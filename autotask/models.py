"""The task table and its companions."""

from django.db import models
from django.utils import timezone

from .task import CANCELLED, DONE, ERROR, FINISHED, RUNNING, STATUS_NAMES, WAITING

STATUS_CHOICES = [(value, name.capitalize()) for value, name in STATUS_NAMES.items()]

# Kinds of task rows.
KIND_DELAYED = "delayed"
KIND_PERIODIC = "periodic"
KIND_CRON = "cron"
KIND_FRAMEWORK = "framework"  # enqueued through django.tasks
KIND_CHOICES = [
    (KIND_DELAYED, "Delayed"),
    (KIND_PERIODIC, "Periodic"),
    (KIND_CRON, "Cron"),
    (KIND_FRAMEWORK, "Django task"),
]


class TaskQueueQuerySet(models.QuerySet):
    def waiting(self):
        return self.filter(status=WAITING)

    def running(self):
        return self.filter(status=RUNNING)

    def finished(self):
        return self.filter(status__in=FINISHED)

    def expired(self, now=None):
        """Finished rows whose result ttl has lapsed (safe to delete)."""
        return self.finished().filter(expires_at__lte=now or timezone.now())


class TaskQueue(models.Model):
    """One stored call of a task function."""

    function = models.CharField(max_length=255, help_text="Dotted path of the task function.")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=KIND_DELAYED)
    queue = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")
    status = models.SmallIntegerField(choices=STATUS_CHOICES, default=WAITING)
    args = models.TextField(default="", help_text="Encoded positional and keyword arguments.")
    # NULL (no result yet) differs from any encoded value, '' included.
    result = models.TextField(null=True, blank=True, help_text="Encoded return value.")  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now)
    scheduled_at = models.DateTimeField(default=timezone.now, help_text="Not run before this.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Deleted after this.")
    ttl = models.FloatField(default=300, help_text="Seconds the outcome is kept.")
    attempts = models.PositiveIntegerField(default=0, help_text="Runs started so far.")
    max_attempts = models.PositiveIntegerField(default=1, help_text="1 + retries.")
    options = models.JSONField(default=dict, blank=True, help_text="Retry and timeout options.")
    worker_id = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    history = models.JSONField(
        default=list, blank=True, help_text="One entry per attempt: worker, times, error."
    )
    # No constraint in the database: its trigger runs for every enqueued row,
    # scheduled or not (a third of a bulk enqueue's time on PostgreSQL), and
    # the ORM sets runs' schedule to NULL when a schedule is deleted anyway.
    # The index, on scheduled runs only, is created per database by migration 0003.
    schedule = models.ForeignKey(
        "Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_constraint=False,
        db_index=False,
    )

    objects = TaskQueueQuerySet.as_manager()

    class Meta:
        verbose_name = "Task"
        verbose_name_plural = "Tasks"
        # Claim, recovery and pruning indexes are created per database vendor by
        # migration 0002 (partial indexes where the database has them).

    def __str__(self):
        return f"{self.function} #{self.pk} ({self.status_name})"

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def is_finished(self):
        return self.status in FINISHED


class Schedule(models.Model):
    """A periodic or cron task: one row per function, one run per occurrence."""

    name = models.CharField(max_length=255, unique=True, help_text="Dotted path of the function.")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES[1:3])
    spec = models.CharField(max_length=255, help_text="Seconds, or a standard cron expression.")
    timezone = models.CharField(max_length=64, blank=True, default="")
    queue = models.CharField(max_length=100, default="default")
    next_run_at = models.DateTimeField(help_text="The next occurrence to enqueue.")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.SmallIntegerField(choices=STATUS_CHOICES, null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    missing = models.BooleanField(default=False, help_text="The function is gone from the code.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Schedule"
        verbose_name_plural = "Schedules"

    def __str__(self):
        return f"{self.name} ({self.kind}: {self.spec})"


class Worker(models.Model):
    """A live worker process, kept fresh by its heartbeat (for display and health checks)."""

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.CharField(max_length=255, blank=True, default="")
    concurrency = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Worker"
        verbose_name_plural = "Workers"

    def __str__(self):
        return f"{self.hostname}:{self.pid}"


__all__ = [
    "CANCELLED",
    "DONE",
    "ERROR",
    "RUNNING",
    "WAITING",
    "Schedule",
    "TaskQueue",
    "Worker",
]
