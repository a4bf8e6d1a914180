"""Task rows read as the framework's TaskResult: status mapping, arguments, errors, workers."""

import json
from dataclasses import replace

from .. import serialization
from ..definitions import registry
from ..exceptions import SerializationError, TaskFunctionNotFound
from ..models import KIND_CRON, KIND_FRAMEWORK, KIND_PERIODIC
from ..task import CANCELLED, DONE, ERROR, FINISHED, HELD, RUNNING, WAITING
from ..timeutil import from_iso, parse_iso
from .framework import InvalidTask, Task, TaskError, TaskResult, TaskResultStatus, normalize_json

MAX_ID = 2**63 - 1  # the largest BigAutoField value: larger ids cannot exist


STATUS_MAP = {
    WAITING: TaskResultStatus.READY,
    HELD: TaskResultStatus.READY,  # waiting for a slot of its concurrency key
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
    "progress",
    "metadata",
)


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


def result_from_row(row, base):
    """Build the :class:`TaskResult` of a task row (a dict of ROW_FIELDS)."""
    options = _as_dict(row["options"])
    history = _as_list(row["history"])
    status = row["status"]
    args, kwargs = serialization.decode_call(row["args"])
    task = _task_as_stored(base, row["priority"], row["queue"], parse_iso(options.get("run_after")))
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
    # The framework's TaskResult has no field for them: autotask's own attributes,
    # as DelayedTask.progress and .metadata read them, where the class takes
    # attributes of its own (a slotted one does not: DelayedTask(int(result.id)) has them).
    if hasattr(result, "__dict__"):
        object.__setattr__(result, "progress", row.get("progress"))
        object.__setattr__(result, "metadata", row.get("metadata") or {})
    return result


def _as_dict(value):
    return json.loads(value) if isinstance(value, str | bytes) else value or {}


def _as_list(value):
    return json.loads(value) if isinstance(value, str | bytes) else value or []


def _first_start(history):
    """When the first attempt started (recovered attempts record no start)."""
    for entry in history:
        if entry.get("started_at"):
            return from_iso(entry["started_at"])
    return None


def _last_start(history, claimed_at):
    """When the last attempt started; its claim time if it was recovered from a lost worker."""
    if history and history[-1].get("started_at"):
        return from_iso(history[-1]["started_at"])
    return claimed_at


def errors_of(history):
    """One TaskError per failed attempt in a row's history."""
    return [
        TaskError(exception_class_path=entry["exception"], traceback=entry.get("traceback", ""))
        for entry in history
        if entry.get("exception")
    ]
