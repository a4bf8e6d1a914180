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

import json
import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

try:  # Django 6.0+
    from django.tasks import task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    FRAMEWORK = "django.tasks"
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import checks as _framework_checks  # noqa: F401 - registers check_tasks
    from django_tasks import task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

    FRAMEWORK = "django_tasks"

from . import enqueue as _enqueue
from . import registry, serialization
from .conf import conf
from .db.base import NewTask
from .exceptions import InvalidTaskOptions, SerializationError, TaskFunctionNotFound
from .models import KIND_CRON, KIND_FRAMEWORK, KIND_PERIODIC
from .registry import FROM_SETTING, TaskOptions
from .task import CANCELLED, DONE, ERROR, FINISHED, RUNNING, WAITING

logger = logging.getLogger("autotask")
# The framework's own logger: its task_finished receiver logs a failed task at ERROR.
framework_logger = logging.getLogger("django.tasks" if FRAMEWORK == "django.tasks" else "django_tasks")

# autotask's own per-task options that framework tasks accept too (None: the backend's OPTIONS).
EXTRA_OPTIONS = ("retries", "ttl", "timeout", "retry_delay", "backoff", "max_retry_delay", "failed_ttl")
# Keys of a backend's OPTIONS: the database holding the task table, and defaults for the above.
BACKEND_OPTIONS = ("database", *EXTRA_OPTIONS)
QUEUE_NAME_MAX_LENGTH = 100  # TaskQueue.queue's max_length
MAX_ID = 2**63 - 1  # the largest BigAutoField value: larger ids cannot exist

STATUS_MAP = {
    WAITING: TaskResultStatus.READY,
    RUNNING: TaskResultStatus.RUNNING,
    DONE: TaskResultStatus.SUCCESSFUL,
    ERROR: TaskResultStatus.FAILED,
    CANCELLED: TaskResultStatus.FAILED,
}
SCHEDULED_KINDS = (KIND_FRAMEWORK, KIND_PERIODIC, KIND_CRON)
ROW_FIELDS = (
    "id",
    "function",
    "kind",
    "queue",
    "priority",
    "status",
    "args",
    "result",
    "created_at",
    "started_at",
    "finished_at",
    "options",
    "worker_id",
    "history",
)


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
    timeout: float | None = None  # seconds; honoured for async functions
    retry_delay: float | None = None  # seconds before the first retry
    backoff: float | None = None  # factor between successive retry delays
    max_retry_delay: float | None = None  # cap on one retry delay, seconds
    # Seconds a failed task is kept; None: until deleted by hand; unset: the backend's OPTIONS,
    # then AUTOTASK_FAILED_TTL.
    failed_ttl: float | None = FROM_SETTING
    periodic: float | None = None  # run every this many seconds (fixed rate)
    start_now: bool = False  # periodic: first run at once rather than after ``periodic``
    cron: str | None = None  # run on this cron expression (standard field order)
    timezone: str | None = None  # cron: the zone it is read in (default settings.TIME_ZONE)

    # Slotted dataclasses are rebuilt as new classes, which breaks zero-argument
    # super(); the base class is named explicitly instead.
    def __post_init__(self):
        Task.__post_init__(self)  # the backend's validate_task
        _register_schedule(self)

    def using(self, **changes):
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

    def __init__(self, alias, params):
        super().__init__(alias, params)
        self.defaults = _backend_defaults(alias, self.options)

    @property
    def database(self):
        """The database alias holding the task table (read at use: override_settings works)."""
        return self.options.get("database") or conf.DATABASE

    # -- validation ------------------------------------------------------

    def validate_task(self, task):
        """Raise InvalidTask unless this backend can run ``task``."""
        super().validate_task(task)
        if len(task.queue_name) > QUEUE_NAME_MAX_LENGTH:
            raise InvalidTask(f"queue_name must be at most {QUEUE_NAME_MAX_LENGTH} characters.")
        registry.note_timeout(task.module_path, task.func, self.options_for(task))
        _schedule_spec(task, self)

    def options_for(self, task):
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

    def enqueue(self, task, args, kwargs):
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
            scheduled_at=_db_datetime(task.run_after) if task.run_after is not None else now,
            kind=KIND_FRAMEWORK,
            queue=task.queue_name,
            priority=task.priority,
            ttl=options.ttl,
            max_attempts=options.retries + 1,
            options=stored,
        )
        (pk,) = _enqueue.insert([row], using=self.database, sender=task)
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

    def get_result(self, result_id):
        """Return the current :class:`TaskResult` of ``result_id``, read from the database."""
        from .models import TaskQueue

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

    def check(self, **kwargs):
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


# -- helpers shared by the caller's process and the worker ------------------


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


def _given(key, value):
    """Whether an autotask option was given: None means "not given", but failed_ttl=None keeps forever."""
    return value is not FROM_SETTING if key == "failed_ttl" else value is not None


def to_json(value, what):
    """Return ``value`` as the framework's JSON rules store it (tuples become lists, ...).

    The framework's own normalisation runs first, then a JSON round trip, so
    the caller sees exactly what the worker will receive (dict keys become
    strings).  Raise the framework's TypeError/ValueError, naming ``what``.
    """
    try:
        return json.loads(json.dumps(normalize_json(value)))
    except TypeError as exc:
        raise SerializationError(
            f"{what} must be JSON data for Django's tasks framework ({exc}); pass plain values "
            "(str, int, float, bool, None, list, dict), e.g. a primary key instead of a model instance."
        ) from exc
    except ValueError as exc:
        raise ValueError(f"{what} must be JSON data for Django's tasks framework: {exc}") from exc


def _db_datetime(value):
    """``run_after`` as the task table stores it under the current USE_TZ."""
    if not settings.USE_TZ and timezone.is_aware(value):
        return timezone.make_naive(value)
    return value


def _parse_id(result_id):
    text = str(result_id)
    if not text.isascii() or not text.isdigit():
        return None
    pk = int(text)
    return pk if 0 < pk <= MAX_ID else None


def is_framework_task(obj):
    """Return True when ``obj`` is a Task of the tasks framework."""
    return isinstance(obj, Task)


def framework_task(path):
    """Return the framework Task named by ``path`` (a module path); raise LookupError if none."""
    target = registry.import_by_path(path)
    if not is_framework_task(target):
        raise TaskFunctionNotFound(
            f"{path} is not a task of Django's tasks framework (found {type(target).__name__}); "
            "a worker finds a framework task by its function's module path"
        )
    return target


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
    from .checks import SUPPORTED_VENDORS

    return connections[alias].vendor in SUPPORTED_VENDORS


def _task_as_stored(base, priority, queue, run_after):
    """Return ``base`` with the attributes a stored row was enqueued with."""
    changes = {}
    if priority != base.priority:
        changes["priority"] = priority
    if queue != base.queue_name:
        changes["queue_name"] = queue
    if run_after is not None and run_after != base.run_after:
        changes["run_after"] = run_after
    if not changes:
        return base
    try:
        return replace(base, **changes)
    except InvalidTask:
        # The configuration changed since (e.g. a queue was removed): the
        # result is still worth reading; show the task as the code defines it.
        return base


def _parse_datetime(text):
    return datetime.fromisoformat(text) if text else None


def result_from_row(row, base):
    """Build the :class:`TaskResult` of a task row (a dict of ROW_FIELDS)."""
    options = _as_dict(row["options"])
    history = _as_list(row["history"])
    status = row["status"]
    args, kwargs = serialization.decode_call(row["args"])
    task = _task_as_stored(base, row["priority"], row["queue"], _parse_datetime(options.get("run_after")))
    worker_ids = [entry.get("worker_id", "") for entry in history]
    if status == RUNNING and row["started_at"] is None:
        status = WAITING  # claimed ahead by a worker, not started: no attempt under way yet
    if status == RUNNING:
        worker_ids.append(row["worker_id"])  # the attempt under way is not in the history yet
    result = TaskResult(
        task=task,
        id=str(row["id"]),
        status=STATUS_MAP[status],
        enqueued_at=row["created_at"],
        started_at=_first_start(history) or row["started_at"],
        # The attempt under way has only its claim time; finished ones have their start.
        last_attempted_at=row["started_at"] if status == RUNNING else _last_start(history, row["started_at"]),
        finished_at=row["finished_at"] if status in FINISHED else None,
        args=list(args),
        kwargs=kwargs,
        backend=options.get("backend", task.backend),
        errors=errors_of(history),
        worker_ids=worker_ids,
    )
    if status == DONE and row["result"] is not None:
        object.__setattr__(result, "_return_value", serialization.decode_value(row["result"]))
    return result


def _as_dict(value):
    return json.loads(value) if isinstance(value, str | bytes) else value or {}


def _as_list(value):
    return json.loads(value) if isinstance(value, str | bytes) else value or []


def _first_start(history):
    """When the first attempt started (recovered attempts record no start)."""
    for entry in history:
        if entry.get("started_at"):
            return _from_iso(entry["started_at"])
    return None


def _last_start(history, claimed_at):
    """When the last attempt started; its claim time if it was recovered from a lost worker."""
    if history and history[-1].get("started_at"):
        return _from_iso(history[-1]["started_at"])
    return claimed_at


def _from_iso(text):
    value = datetime.fromisoformat(text)
    if not settings.USE_TZ and timezone.is_aware(value):
        value = timezone.make_naive(value)
    return value


def errors_of(history):
    """One TaskError per failed attempt in a row's history."""
    return [
        TaskError(exception_class_path=entry["exception"], traceback=entry.get("traceback", ""))
        for entry in history
        if entry.get("exception")
    ]


def backend_class(alias):
    """The class of the backend ``alias`` (the sender of the framework's signals)."""
    try:
        return type(task_backends[alias])
    except Exception:  # noqa: BLE001 - an alias this process lacks: still say who ran it
        return AutotaskBackend


# -- periodic and cron framework tasks ---------------------------------------


def _schedule_spec(task, backend):
    """Return the scheduler's spec for a task declaring ``periodic``/``cron``, else None."""
    periodic, cron = getattr(task, "periodic", None), getattr(task, "cron", None)
    tz, start_now = getattr(task, "timezone", None), getattr(task, "start_now", False)
    if periodic is None and cron is None:
        if tz is not None or start_now:
            raise InvalidTask("timezone and start_now need a schedule: give periodic= or cron= as well.")
        return None
    from . import scheduler

    if periodic is not None and cron is not None:
        raise InvalidTask("Give either periodic= (seconds) or cron= (an expression), not both.")
    _check_no_arguments(task)
    run = _run_options(task, backend)
    try:
        if periodic is not None:
            if tz is not None:
                raise InvalidTaskOptions("timezone applies to cron= schedules only")
            factory = scheduler.PeriodicFactory("task", {"seconds": periodic, "start_now": start_now, **run})
        else:
            if start_now:
                raise InvalidTaskOptions("start_now applies to periodic= schedules only")
            options = {"cron": cron, **run}
            if tz is not None:
                options["timezone"] = tz
            factory = scheduler.CronFactory("task", options)
    except (InvalidTaskOptions, TypeError, ValueError) as exc:
        raise InvalidTask(f"Invalid schedule for {task.module_path}: {exc}") from exc
    return factory.make_spec(task.module_path)


def _run_options(task, backend):
    """The options each scheduled run is stored with: the task's over its backend's OPTIONS."""
    if isinstance(backend, AutotaskBackend):
        options = backend.options_for(task)
        return {key: getattr(options, key) for key in (*EXTRA_OPTIONS, "queue", "priority")}
    run = {key: getattr(task, key) for key in EXTRA_OPTIONS if _given(key, getattr(task, key, None))}
    return {**run, "queue": task.queue_name, "priority": task.priority}


def _check_no_arguments(task):
    import inspect

    func = partial(task.func, None) if task.takes_context else task.func
    try:
        inspect.signature(func).bind()
    except TypeError as exc:
        raise InvalidTask(
            f"A periodic or cron task runs without arguments, but {task.module_path} needs some: {exc}."
        ) from exc


def _register_schedule(task):
    """Hand a scheduled framework task to autotask's scheduler (once per declaration)."""
    spec = _schedule_spec(task, task.get_backend())
    if spec is None:
        return
    from . import scheduler

    # The declaration (the module-level task, created first) registers; copies
    # made later by using() or by reading results must not replace its options.
    scheduler.add(spec, replace=False)


# -- running inside a worker --------------------------------------------------


def _claimed_datetime(value):
    """A datetime column of a claimed row, as the ORM would return it.

    Claims read rows with raw SQL, which skips Django's converters: SQLite
    gives naive datetimes (or text) that are in UTC when USE_TZ is on.
    """
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


class FrameworkRun:
    """One attempt of a framework task in a worker: context, JSON result, signals."""

    def __init__(self, claimed, target, worker_id, started_at):
        self.claimed = claimed
        options = claimed.options or {}
        self.alias = options.get("backend", target.backend)
        task = _task_as_stored(
            target, claimed.priority, claimed.queue, _parse_datetime(options.get("run_after"))
        )
        self.result = TaskResult(
            task=task,
            id=str(claimed.id),
            status=TaskResultStatus.RUNNING,
            enqueued_at=_claimed_datetime(claimed.created_at),
            started_at=_first_start(claimed.history) or started_at,
            last_attempted_at=started_at,
            finished_at=None,
            args=[],
            kwargs={},
            backend=self.alias,
            errors=errors_of(claimed.history),
            worker_ids=[*(entry.get("worker_id", "") for entry in claimed.history), worker_id],
        )
        self.sender = backend_class(self.alias)

    def prepare(self, func):
        """Return the callable to run: with the TaskContext first when the task takes it."""
        if self.result.task.takes_context:
            return partial(func, TaskContext(task_result=self.result))
        return func

    def started(self, args, kwargs):
        # Decoded from the row, so already JSON data; the context sees them too.
        object.__setattr__(self.result, "args", list(args))
        object.__setattr__(self.result, "kwargs", dict(kwargs))
        self._send(task_started)

    def encode_result(self, value):
        """Normalise ``value`` by the framework's JSON rules and encode it for the row."""
        try:
            value = to_json(value, "the return value")
        except ValueError as exc:  # undecodable bytes: as unstorable as an unsupported type
            raise SerializationError(str(exc)) from exc
        object.__setattr__(self.result, "_return_value", value)
        return serialization.encode_value(value, serializer="json")

    def finished(self, outcome):
        status = STATUS_MAP[outcome.status]
        object.__setattr__(self.result, "status", status)
        object.__setattr__(self.result, "errors", errors_of(outcome.history))
        if outcome.status in FINISHED:
            object.__setattr__(self.result, "finished_at", outcome.finished_at)
        if outcome.status != DONE:
            object.__setattr__(self.result, "_return_value", None)
        if outcome.status != ERROR:
            self._send(task_finished)
            return
        # autotask's logger reports the failure at ERROR with the exception and the
        # task's context; the framework's receiver would log it a second time.
        _failures_reported.active = True
        try:
            self._send(task_finished)
        finally:
            _failures_reported.active = False

    def _send(self, signal):
        # A failing receiver must not lose the task's outcome: log it and go on.
        for receiver, response in signal.send_robust(self.sender, task_result=self.result):
            if isinstance(response, Exception):
                logger.error(
                    "a receiver of the tasks framework's signal failed (%r) for task #%s",
                    receiver,
                    self.claimed.id,
                    exc_info=response,
                )


_failures_reported = threading.local()  # set while task_finished is sent for a task that failed


class _OneErrorPerFailure(logging.Filter):
    """Log the framework's "state=FAILED" line at INFO, without the exception, for autotask's runs.

    autotask logs the same failure at ERROR with its exception and context
    (``autotask`` logger): error trackers then record one event per failure.
    """

    def filter(self, record):
        if getattr(_failures_reported, "active", False) and record.levelno >= logging.ERROR:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None
        return True


framework_logger.addFilter(_OneErrorPerFailure())


__all__ = [
    "FRAMEWORK",
    "AutotaskBackend",
    "AutotaskTask",
    "FrameworkRun",
    "framework_task",
    "is_framework_task",
    "result_from_row",
    "to_json",
]
