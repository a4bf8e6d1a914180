"""Workflows: chains, groups and callbacks, stored in the database when enqueued.

A workflow is a list of stages; each stage is one step (a chain's link) or a
group of steps run in parallel.  Stage 0's steps are task rows from the
start, inserted in the caller's transaction with the workflow's row; each
later stage waits in that row (``Workflow.stages``) until the stage before it
has ended.  Every step of the current stage, when its final outcome is
written (DONE or ERROR, not a retry), decrements the workflow's ``remaining``
in the same transaction; the transaction that brings it to zero enqueues the
next stage, giving each of its steps the previous stage's result as its first
argument (a group's: the list of its steps' results, in order).  That is one
row update: exactly once, however many workers finish steps at the same time,
and a worker that dies before its commit leaves both undone (its lease lapses
and recovery retries the step, or fails it and counts it).

Failure: a stage with a failed (or cancelled) step ends the workflow as
ERROR once all its steps have ended; the stages after it never run (a chain
stops; a group's callback is not called).

The results a later stage needs are kept: pruning leaves the rows of a
running workflow alone (see Driver.prune), whatever their ttl.
"""

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import serialization
from ..conf import conf
from ..db import get_ops
from ..db.base import NewTask
from ..task import DONE, ERROR, RUNNING, STATUS_NAMES
from . import announce, build_row
from .handle import DelayedTask, StatusWords

# Rows whose workflow column is set per UPDATE statement (an IN list of ids).
TAG_BATCH = 1000


class Step:
    """One call of a task in a workflow: ``task.step(*args, **kwargs)``.

    A step after the first stage receives the previous stage's result as its
    first positional argument, before ``args``.
    """

    __slots__ = ("args", "database", "func", "kwargs", "name", "options")

    def __init__(self, name, func, options, args, kwargs, database=None):
        if options.unique is not None or options.unique_key is not None:
            raise ValueError(
                f"{name} is a unique task: it cannot be a workflow step (a duplicate would "
                "never run as the step). Use a task without unique/unique_key."
            )
        if options.concurrency_limit is not None or options.rate_limit is not None:
            raise ValueError(
                f"{name} has a concurrency or rate limit: it cannot be a workflow step (a step is "
                "stored ready to run, outside its key's admission). Use a task without "
                "concurrency_limit/rate_limit, or enqueue the limited task from a step."
            )
        self.name, self.func, self.options = name, func, options
        self.args, self.kwargs, self.database = args, kwargs, database

    def __repr__(self):
        return f"<Step {self.name}>"


def _steps(items, what):
    steps = []
    for item in items:
        if not isinstance(item, Step):
            raise TypeError(
                f"{what} takes steps (task.step(*args, **kwargs)), not {type(item).__name__}: {item!r}"
            )
        steps.append(item)
    return steps


class Group:
    """Steps run in parallel: ``group(a.step(1), a.step(2))``; ``.then(callback.step())`` adds a callback."""

    def __init__(self, steps):
        self.steps = _steps(steps, "group()")
        if not self.steps:
            raise ValueError("group() needs at least one step")

    def then(self, item):
        """A workflow: this group, then ``item`` (a step or a group) with the list of its results."""
        return Workflow([self]).then(item)

    def enqueue(self, using=None, name=""):
        """Store the group as a workflow of one stage; return its :class:`WorkflowHandle`."""
        return Workflow([self]).enqueue(using=using, name=name)


class Workflow:
    """Stages run one after the other: each a :class:`Step` or a :class:`Group`."""

    def __init__(self, stages):
        self.stages = []
        for item in stages:
            self._add(item)
        if not self.stages:
            raise ValueError("a workflow needs at least one step")

    def _add(self, item):
        if isinstance(item, Workflow):
            self.stages.extend(item.stages)
        elif isinstance(item, Group | Step):
            self.stages.append(item)
        else:
            raise TypeError(
                f"a workflow's stages are steps (task.step(...)), groups or workflows, "
                f"not {type(item).__name__}: {item!r}"
            )

    def then(self, item):
        """This workflow, then ``item`` (a step, a group or a workflow)."""
        following = Workflow(self.stages)
        following._add(item)
        return following

    def enqueue(self, using=None, name=""):
        """Store the workflow (in the caller's transaction); return its :class:`WorkflowHandle`."""
        return enqueue_workflow(self.stages, using=using, name=name)


def chain(*items):
    """Run ``items`` one after the other, each with the result of the one before: a :class:`Workflow`."""
    return Workflow(items)


def group(*steps):
    """Run ``steps`` in parallel (``group(s1, s2)`` or ``group(generator)``): a :class:`Group`."""
    if len(steps) == 1 and not isinstance(steps[0], Step | Group | Workflow):
        steps = tuple(steps[0])
    return Group(steps)


# -- storing ----------------------------------------------------------------


def _spec(step, now, templates):
    """What a step's row needs, encoded now (so a bad argument fails in the caller).

    ``templates`` caches what the steps of one task and options share (all but the arguments).
    """
    key = (step.name, id(step.options))
    template = templates.get(key)
    if template is None:
        row = build_row(step.name, (), {}, step.options, now, func=step.func)
        template = templates[key] = {
            "function": row.function,
            "queue": row.queue,
            "priority": row.priority,
            "ttl": row.ttl,
            "max_attempts": row.max_attempts,
            "options": row.options,
            "delay": step.options.delay or 0,
        }
    return {**template, "args": serialization.encode_call(step.args, step.kwargs)}


def _database(stages, using):
    databases = {step.database for stage in stages for step in _stage_steps(stage)} - {None}
    if using is None and len(databases) > 1:
        raise ValueError(f"the steps of a workflow must use one database, not {sorted(databases)}")
    alias = using or (databases.pop() if databases else None) or conf.DATABASE
    return alias


def _stage_steps(stage):
    return stage.steps if isinstance(stage, Group) else [stage]


def enqueue_workflow(stages, using=None, name=""):
    """Store a workflow: its row and its first stage's task rows, in one transaction; its handle."""
    from ..models import Workflow as WorkflowRow  # not at the top: see handle.DelayedTask._row

    alias = _database(stages, using)
    now = timezone.now()
    templates = {}
    specs = [[_spec(step, now, templates) for step in _stage_steps(stage)] for stage in stages]
    stored = [
        {"group": isinstance(stage, Group), "size": len(steps), "steps": None if index == 0 else steps}
        for index, (stage, steps) in enumerate(zip(stages, specs, strict=True))
    ]
    ttl = max(spec["ttl"] for steps in specs for spec in steps)
    with transaction.atomic(using=alias):
        row = WorkflowRow.objects.using(alias).create(
            name=name[:255], status=RUNNING, stages=stored, stage=0, remaining=len(specs[0]), ttl=ttl
        )
        ids, rows = _insert_stage(get_ops(alias), row.pk, 0, specs[0], None, now)
        announce(alias, ids, rows, None)
    return WorkflowHandle(row.pk, using=alias)


def _insert_stage(ops, workflow_id, stage, specs, previous, now):
    """Insert the task rows of ``stage``; ``previous``: (the previous stage's result,) or None."""
    tag = [workflow_id, stage]
    rows, options = [], {}
    for spec in specs:
        args = spec["args"]
        if previous is not None:
            call_args, call_kwargs = serialization.decode_call(args)
            args = serialization.encode_call((*previous, *call_args), call_kwargs)
        stored = options.get(id(spec["options"]))
        if stored is None:  # one dict per distinct options: the insert sends equal values once
            stored = options[id(spec["options"])] = {**spec["options"], "workflow": tag}
        rows.append(
            NewTask(
                function=spec["function"],
                args=args,
                created_at=now,
                scheduled_at=now + timedelta(seconds=spec["delay"]) if spec["delay"] else now,
                queue=spec["queue"],
                priority=spec["priority"],
                ttl=spec["ttl"],
                max_attempts=spec["max_attempts"],
                options=stored,
            )
        )
    return ops.insert_steps(rows, workflow_id), rows


# -- advancing: in the transaction that writes the steps' outcomes -------------


def is_step(options):
    """True for the stored options of a workflow's step."""
    return "workflow" in options


def finish_steps(ops, worker_id, outcomes, now=None):
    """Write the final outcomes (DONE, ERROR) of workflow steps a worker ran, and advance their workflows.

    One transaction: a step's outcome and its count in the workflow commit
    together or not at all.  Return the ids written (rows this worker still held).
    """
    now = now or timezone.now()
    with transaction.atomic(using=ops.connection.alias, savepoint=False):
        written = set(ops.finish_each(worker_id, outcomes))
        steps_ended(ops, [(o.id, o.workflow, o.status) for o in outcomes if o.id in written], now)
    return written


def steps_ended(ops, ended, now):
    """Count steps that reached a final state: ``ended`` holds (id, [workflow, stage], status).

    The caller holds the transaction that wrote those states.  Workflows are
    counted in id order (concurrent transactions lock their rows in one order).
    """
    counts = defaultdict(lambda: [0, 0])
    for _pk, tag, status in ended:
        entry = counts[(tag[0], tag[1])]
        entry[0] += 1
        entry[1] += status != DONE
    for (workflow_id, stage), (count, failed) in sorted(counts.items()):
        counted = ops.count_steps(workflow_id, stage, count, failed)
        if counted is not None and counted[0] == 0:
            _stage_ended(ops, workflow_id, now)


def _stage_ended(ops, workflow_id, now):
    """The last step of the workflow's current stage has ended: run the next stage, or end it."""
    from ..models import TaskQueue  # not at the top: see handle
    from ..models import Workflow as WorkflowRow

    alias = ops.connection.alias
    rows = WorkflowRow.objects.using(alias).filter(pk=workflow_id)
    workflow = rows.get()  # locked by this transaction's count
    stage, stages = workflow.stage, workflow.stages
    ended = {"finished_at": now, "expires_at": now + timedelta(seconds=workflow.ttl)}
    if workflow.failed:
        size = stages[stage]["size"]
        rows.update(
            status=ERROR,
            error_message=(
                f"{workflow.failed} of {size} step{'s' if size > 1 else ''} of stage {stage + 1} "
                f"failed or {'were' if workflow.failed > 1 else 'was'} cancelled; "
                f"{len(stages) - stage - 1} later stage(s) not run"
            ),
            **ended,
        )
        return
    if stage + 1 >= len(stages):
        rows.update(status=DONE, **ended)
        return
    done = TaskQueue.objects.using(alias).filter(workflow_id=workflow_id, status=DONE).order_by("id")
    results = [
        result
        for result, options in done.values_list("result", "options")
        if options.get("workflow", [None, None])[1] == stage
    ]
    try:
        if len(results) != stages[stage]["size"]:
            raise ValueError(
                f"{len(results)} results of stage {stage + 1} found, {stages[stage]['size']} expected"
            )
        values = [None if text is None else serialization.decode_value(text) for text in results]
        previous = (values if stages[stage]["group"] else values[0],)
        _insert_stage(ops, workflow_id, stage + 1, stages[stage + 1]["steps"], previous, now)
    except Exception as exc:  # noqa: BLE001 - recorded on the workflow, never lost in a worker's log
        rows.update(status=ERROR, error_message=f"stage {stage + 2} could not be enqueued: {exc}", **ended)
    else:
        rows.update(stage=stage + 1, remaining=stages[stage + 1]["size"], failed=0)


# -- the handle -----------------------------------------------------------------


class StepState:
    """One step of a workflow as its handle shows it: its function, state and task (once enqueued)."""

    __slots__ = ("function", "stage", "status_name", "task")

    def __init__(self, stage, function, status_name, task=None):
        self.stage, self.function, self.status_name, self.task = stage, function, status_name, task

    def __repr__(self):
        return f"<StepState stage {self.stage} {self.function}: {self.status_name}>"


class WorkflowHandle(StatusWords):
    """A handle on a stored workflow; every property reads the current rows."""

    def __init__(self, pk: int, using: str | None = None) -> None:
        self.pk = pk
        self.using = using or conf.DATABASE

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.pk}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkflowHandle) and (other.pk, other.using) == (self.pk, self.using)

    def __hash__(self) -> int:
        return hash(("workflow", self.pk, self.using))

    def _row(self):
        from ..models import Workflow as WorkflowRow  # not at the top: see handle

        return WorkflowRow.objects.using(self.using).filter(pk=self.pk).first()

    @property
    def status(self) -> int | None:
        """RUNNING, DONE, ERROR or CANCELLED; None when the row is gone."""
        row = self._row()
        return None if row is None else row.status

    @property
    def error_message(self) -> str:
        row = self._row()
        return "" if row is None else row.error_message

    @property
    def stage(self) -> int | None:
        """The index of the stage running now (the last one, once DONE)."""
        row = self._row()
        return None if row is None else row.stage

    @property
    def steps(self) -> list[list[StepState]]:
        """Each stage's steps and their state: a task's status, or "pending" / "not run" (a later stage)."""
        from ..models import TaskQueue  # not at the top: see handle

        row = self._row()
        if row is None:
            return []
        found = defaultdict(list)
        tasks = TaskQueue.objects.using(self.using).filter(workflow_id=self.pk).order_by("id")
        for pk, function, status, options in tasks.values_list("pk", "function", "status", "options"):
            stage = options.get("workflow", [None, 0])[1]
            found[stage].append(
                StepState(stage, function, STATUS_NAMES.get(status), DelayedTask(pk, using=self.using))
            )
        later = "pending" if row.status == RUNNING else "not run"
        stages = []
        for index, stage in enumerate(row.stages):
            if index <= row.stage and (index in found or index < row.stage):
                stages.append(found.get(index, []))
            else:
                stages.append([StepState(index, spec["function"], later) for spec in stage["steps"] or []])
        return stages

    @property
    def result(self) -> Any:
        """The last stage's result once DONE (a group's: the list of its results), else None."""
        from ..models import TaskQueue  # not at the top: see handle

        row = self._row()
        if row is None or row.status != DONE:
            return None
        stage = len(row.stages) - 1
        done = TaskQueue.objects.using(self.using).filter(workflow_id=self.pk, status=DONE).order_by("id")
        values = [
            None if result is None else serialization.decode_value(result)
            for result, options in done.values_list("result", "options")
            if options.get("workflow", [None, None])[1] == stage
        ]
        if not values:
            return None  # the steps' rows are gone (pruned after their ttl)
        return values if row.stages[-1]["group"] else values[0]

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> bool:
        """Block until the workflow has ended; return False if ``timeout`` ran out first."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.ready is False:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval if deadline is None else max(0, min(interval, deadline - time.monotonic())))
        return True

    def cancel(self) -> bool:
        """Cancel the workflow: its waiting steps are cancelled and no later stage runs.

        Steps already running finish; their outcomes no longer count.  Return
        True if it was running.
        """
        from ..models import Workflow as WorkflowRow  # not at the top: see handle

        return WorkflowRow.objects.using(self.using).filter(pk=self.pk).cancel(timezone.now()) == 1


__all__ = [
    "Group",
    "Step",
    "StepState",
    "Workflow",
    "WorkflowHandle",
    "chain",
    "enqueue_workflow",
    "finish_steps",
    "group",
    "is_step",
    "steps_ended",
]
