"""autotask as a backend for Django's tasks framework.

``TASKS = {"default": {"BACKEND": "autotask.backend.AutotaskBackend"}}`` stores
framework tasks as rows of kind ``"framework"`` in autotask's table, where the
same workers run them.  Works with ``django.tasks`` (Django 6.0+) and with the
``django-tasks`` backport on Django 5.2, whichever is importable.

Status mapping: WAITING → READY, RUNNING → RUNNING (READY while a worker has
only claimed it ahead, not started it), DONE → SUCCESSFUL,
ERROR → FAILED, CANCELLED → FAILED (the framework has no cancelled state;
FAILED is its "unable to start").  A failed attempt that will be retried
reads READY again, with the failure in ``errors``.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import connections
from django.utils import timezone

from .. import enqueue as _enqueue
from .. import serialization
from ..conf import conf
from ..db.base import NewTask
from ..db.checks import vendor_supported
from ..definitions import limits, registry, unique
from ..definitions.options import FROM_SETTING, TaskOptions
from ..exceptions import InvalidTaskOptions, TaskFunctionNotFound
from ..models import KIND_FRAMEWORK, TaskQueue
from ..timeutil import db_datetime
from .framework import (
    EXTRA_OPTIONS,
    FRAMEWORK,
    BaseTaskBackend,
    InvalidTask,
    InvalidTaskBackend,
    Task,
    TaskContext,  # noqa: F401 - still importable from here
    TaskError,  # noqa: F401 - still importable from here
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    _given,
    normalize_json,  # noqa: F401 - still importable from here
    task_backends,  # noqa: F401 - still importable from here
    task_enqueued,
    task_finished,  # noqa: F401 - still importable from here
    task_started,  # noqa: F401 - still importable from here
)
from .results import (
    ROW_FIELDS,
    SCHEDULED_KINDS,
    _parse_id,
    framework_task,
    is_framework_task,
    result_from_row,
    to_json,
)
from .schedules import _register_schedule, _schedule_spec

logger = logging.getLogger("autotask")

# Keys of a backend's OPTIONS: the database holding the task table, and defaults for the above.
BACKEND_OPTIONS = ("database", *EXTRA_OPTIONS)
QUEUE_NAME_MAX_LENGTH = 100  # TaskQueue.queue's max_length


@dataclass(frozen=True, slots=True, kw_only=True)
class AutotaskTask(Task):
    """A framework Task that also carries autotask's options.

    Each option is None unless given: None falls back to the backend's
    ``OPTIONS``, then to autotask's default.  ``periodic`` (seconds) or
    ``cron`` (a standard 5-field expression, read in ``timezone``) schedule
    the task to run without arguments, like ``@periodic_task``/``@cron_task``.
    """

    retries: int | None = None  # extra attempts after a failure
    ttl: float | None = None  # seconds the result is kept after the task finished
    timeout: float | None = None  # seconds; a sync task's holds in a child process (isolated, process mode)
    soft_timeout: float | None = None  # seconds; SoftTimeLimitExceeded raised in a task in a child process
    isolated: bool | None = None  # run in a child process of the worker (None: not given, False)
    retry_delay: float | None = None  # seconds before the first retry
    backoff: float | None = None  # factor between successive retry delays
    max_retry_delay: float | None = None  # cap on one retry delay, seconds
    # Seconds a failed task is kept; None: until deleted by hand; unset: the backend's OPTIONS,
    # then AUTOTASK_FAILED_TTL.
    failed_ttl: float | None = FROM_SETTING  # type: ignore[assignment]  # the sentinel: not given
    # Unique tasks, as @delayed_task(unique=..., unique_key=...): a duplicate's
    # enqueue returns the result of the task holding the key.
    unique: Any = None
    unique_key: Any = None
    # Concurrency and rate limits, as @delayed_task(concurrency_limit=..., rate_limit=...).
    concurrency_limit: int | None = None
    concurrency_key: Any = None
    rate_limit: str | None = None
    rate_key: Any = None
    periodic: float | None = None  # run every this many seconds (fixed rate)
    start_now: bool = False  # periodic: first run at once rather than after ``periodic``
    cron: str | None = None  # run on this cron expression (standard field order)
    timezone: str | None = None  # cron: the zone it is read in (default settings.TIME_ZONE)

    # Slotted dataclasses are rebuilt as new classes, which breaks zero-argument
    # super(); the base class is named explicitly instead.
    def __post_init__(self) -> None:
        Task.__post_init__(self)  # the backend's validate_task
        _register_schedule(self)

    def using(self, **changes: Any) -> Task:
        """Return a copy with framework attributes and autotask options changed.

        ``send_mail.using(priority=10, retries=3).enqueue(...)``
        """
        extras = {key: changes.pop(key) for key in list(changes) if key in EXTRA_OPTIONS}
        task = Task.using(self, **changes)
        extras = {key: value for key, value in extras.items() if _given(key, value)}
        return replace(task, **extras) if extras else task


class AutotaskBackend(BaseTaskBackend):
    """Run framework tasks on autotask's table and workers."""

    task_class = AutotaskTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.defaults = _backend_defaults(alias, self.options)

    @property
    def database(self) -> str:
        """The database alias holding the task table (read at use: override_settings works)."""
        return self.options.get("database") or conf.DATABASE

    # -- validation ------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Raise InvalidTask unless this backend can run ``task``."""
        super().validate_task(task)
        if len(task.queue_name) > QUEUE_NAME_MAX_LENGTH:
            raise InvalidTask(f"queue_name must be at most {QUEUE_NAME_MAX_LENGTH} characters.")
        options = self.options_for(task)
        registry.note_timeout(task.module_path, task.func, options)
        try:
            unique.check_template_fields(task.func, options.unique_key)
            limits.check_template_fields(task.func, options)
        except InvalidTaskOptions as exc:
            raise InvalidTask(str(exc)) from exc
        _schedule_spec(task, self)

    def options_for(self, task: Task) -> TaskOptions:
        """Return the :class:`TaskOptions` a row of ``task`` is stored with."""
        options = dict(self.defaults)
        options.update(
            {key: getattr(task, key) for key in EXTRA_OPTIONS if _given(key, getattr(task, key, None))}
        )
        try:
            return TaskOptions(queue=task.queue_name, priority=task.priority, **options)
        except InvalidTaskOptions as exc:
            raise InvalidTask(str(exc)) from exc

    # -- enqueue ---------------------------------------------------------

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
        """Store a call of ``task`` in the caller's transaction; return its READY result."""
        self.validate_task(task)
        _check_importable(task)
        options = self.options_for(task)
        args = to_json(list(args), "args")
        kwargs = to_json(dict(kwargs), "kwargs")
        now = timezone.now()
        stored = {**options.stored(), "backend": self.alias}
        if task.run_after is not None:
            stored["run_after"] = task.run_after.isoformat()
        row = NewTask(
            function=task.module_path,
            args=serialization.encode_call(tuple(args), kwargs, serializer="json"),
            created_at=now,
            scheduled_at=db_datetime(task.run_after) if task.run_after is not None else now,
            kind=KIND_FRAMEWORK,
            queue=task.queue_name,
            priority=task.priority,
            ttl=options.ttl,
            max_attempts=options.retries + 1,
            options=stored,
        )
        try:
            if options.unique is not None or options.unique_key is not None:
                _enqueue.set_unique_key(row, task.module_path, options, task.func, tuple(args), kwargs)
            if options.concurrency_limit is not None or options.rate_limit is not None:
                _enqueue.set_limits(row, task.module_path, options, task.func, tuple(args), kwargs)
        except InvalidTaskOptions as exc:
            raise InvalidTask(str(exc)) from exc
        ((pk, duplicate),) = _enqueue.store([row], using=self.database, sender=task)
        if duplicate:
            return self.get_result(str(pk))  # the task holding the key, as it stands
        result = TaskResult(
            task=task,
            id=str(pk),
            status=TaskResultStatus.READY,
            enqueued_at=now,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    # -- results ---------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult:
        """Return the current :class:`TaskResult` of ``result_id``, read from the database."""
        pk = _parse_id(result_id)
        row = None
        if pk is not None:
            row = (
                TaskQueue.objects.using(self.database)
                .filter(pk=pk, kind__in=SCHEDULED_KINDS)
                .values(*ROW_FIELDS)
                .first()
            )
        if row is None:
            raise TaskResultDoesNotExist(f"No task result with id {result_id!r}.")
        try:
            base = framework_task(row["function"])
        except LookupError as exc:
            if row["kind"] != KIND_FRAMEWORK:
                raise TaskResultDoesNotExist(f"No task result with id {result_id!r}.") from exc
            raise TaskResultDoesNotExist(
                f"Task result {result_id!r} exists, but its task cannot be loaded here: {exc}"
            ) from exc
        return result_from_row(row, base)

    # -- checks ----------------------------------------------------------

    def check(self, **kwargs: Any) -> Iterator[checks.CheckMessage]:
        """Report misconfiguration (``manage.py check`` runs this through the framework)."""
        yield from super().check(**kwargs)
        backend = f"TASKS[{self.alias!r}]"
        if not apps.is_installed("autotask"):
            yield checks.Error(
                f"{backend} uses autotask's backend, but 'autotask' is not in INSTALLED_APPS.",
                hint="Add 'autotask' to INSTALLED_APPS and run manage.py migrate.",
                id="autotask.E101",
            )
        alias = self.database
        if alias not in connections.settings:
            yield checks.Error(
                f"{backend} stores tasks in the database {alias!r}, which is not in DATABASES.",
                hint="Set OPTIONS['database'] (or AUTOTASK_DATABASE) to an alias from DATABASES.",
                id="autotask.E102",
            )
        elif not _vendor_supported(alias):
            yield checks.Error(
                f"{backend} stores tasks in the database {alias!r} "
                f"({connections[alias].vendor}), which autotask does not support.",
                hint="Keep the task table on PostgreSQL, SQLite or MariaDB/MySQL.",
                id="autotask.E103",
            )
        for queue in sorted(self.queues, key=repr):
            if not isinstance(queue, str) or not queue or len(queue) > QUEUE_NAME_MAX_LENGTH:
                yield checks.Error(
                    f"{backend} QUEUES holds {queue!r}; queue names are non-empty strings of at "
                    f"most {QUEUE_NAME_MAX_LENGTH} characters.",
                    id="autotask.E104",
                )


# -- helpers ----------------------------------------------------------------


def _backend_defaults(alias, options):
    """Validate a backend's OPTIONS now; return the autotask options among them."""
    if not isinstance(options, dict):
        raise InvalidTaskBackend(f"TASKS[{alias!r}]['OPTIONS'] must be a dict, not {options!r}.")
    unknown = sorted(set(options) - set(BACKEND_OPTIONS))
    if unknown:
        raise InvalidTaskBackend(
            f"TASKS[{alias!r}]['OPTIONS'] has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"autotask's backend accepts {', '.join(BACKEND_OPTIONS)}."
        )
    database = options.get("database")
    if database is not None and (not isinstance(database, str) or not database):
        raise InvalidTaskBackend(f"TASKS[{alias!r}]['OPTIONS']['database'] must be a database alias.")
    defaults = {key: options[key] for key in EXTRA_OPTIONS if key in options and _given(key, options[key])}
    try:
        TaskOptions(**defaults)
    except InvalidTaskOptions as exc:
        raise InvalidTaskBackend(f"TASKS[{alias!r}]['OPTIONS']: {exc}.") from exc
    return defaults


def _check_importable(task):
    """Raise InvalidTask unless a worker will find ``task`` by its module path."""
    try:
        target = registry.import_by_path(task.module_path)
    except TaskFunctionNotFound as exc:
        raise InvalidTask(f"A worker cannot import this task: {exc}.") from exc
    if getattr(target, "func", None) is not task.func:
        raise InvalidTask(
            f"{task.module_path} does not name this task: a worker imports a task by the module "
            "path of its function, so bind the decorated task to the function's own name at "
            "module level (def send(...) decorated with @task)."
        )


def _vendor_supported(alias):
    """Return True when autotask supports ``alias``'s database."""
    return vendor_supported(connections[alias])


__all__ = [
    "FRAMEWORK",
    "AutotaskBackend",
    "AutotaskTask",
    "framework_task",
    "is_framework_task",
    "result_from_row",
    "to_json",
]
