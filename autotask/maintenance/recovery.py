"""Lease recovery: tasks of workers that died are given back, or marked ERROR."""

import logging
import time
from collections import Counter

from django.db import transaction
from django.utils import timezone

from ..db.base import Outcome
from ..definitions.options import failed_expiry
from ..models import TaskQueue, record_finished
from ..task import CANCELLED, CANCELLED_KEPT, ERROR, WAITING

logger = logging.getLogger("autotask")

RECOVER_BATCH = 100  # lapsed leases read and released per statement
RECOVER_TIME_BUDGET = 2.0  # seconds one recovery pass may take before the loop runs tasks again


def recover(ops, now=None, batch=RECOVER_BATCH, budget=RECOVER_TIME_BUDGET):
    """Give lapsed leases back, batch after batch, until none is left; return (count, finished).

    ``finished`` is False when the time budget ran out first: the caller runs
    the next pass at once.  Each batch reads the clock anew (unless ``now`` is
    given), so the time written is when the task really was recovered, not when
    the pass began (it may have waited out a database outage).
    """
    deadline = time.monotonic() + budget
    total = 0
    while True:
        lapsed = ops.lapsed_leases(now or timezone.now(), batch)
        if not lapsed:
            return total, True
        total += recover_batch(ops, lapsed, now)
        if len(lapsed) < batch:
            return total, True
        if time.monotonic() > deadline:
            return total, False


def recover_batch(ops, lapsed, now=None):
    """Give back one batch of ``lapsed_leases`` rows (two statements); return how many."""
    # Read after the rows were found: the time of the release itself.
    now = now or timezone.now()
    unstarted = [row.id for row in lapsed if not row.started]
    # Claimed ahead and never started: back to the queue as if never claimed.
    given_back = ops.unclaim_lapsed(now, unstarted)
    if given_back:
        # Asked to stop before they started: cancelled now, not run by the next worker.
        TaskQueue.objects.using(ops.connection.alias).filter(
            pk__in=unstarted, stop_requested_at__isnull=False
        ).cancel_waiting(now)
        logger.warning(
            "%s tasks claimed but not started by a lost worker are waiting again (no attempt used)",
            given_back,
            extra={"outcome": "recovered", "count": given_back},
        )
    outcomes = {}
    stopped = _asked_to_stop(ops, [row.id for row in lapsed if row.started])
    for row in lapsed:
        if row.started:
            outcomes[row.id] = (row.worker_id, _lost_outcome(row, now, row.id in stopped))
    steps = [row for row in lapsed if row.started and "workflow" in row.options]
    if steps:
        released = _release_steps(ops, now, outcomes, steps)
    else:
        released = ops.release_lapsed(now, [outcome for _, outcome in outcomes.values()])
    _count_released(ops, lapsed, outcomes, released, now)
    for task_id in released:
        worker_id, outcome = outcomes[task_id]
        logger.warning(
            "task #%s recovered from a lost worker: %s",
            task_id,
            {WAITING: "retrying", CANCELLED: "marked CANCELLED (it was asked to stop)"}.get(
                outcome.status, "marked ERROR"
            ),
            extra={"task_id": task_id, "worker_id": worker_id, "outcome": "recovered"},
        )
    return given_back + len(released)


def _release_steps(ops, now, outcomes, steps):
    """release_lapsed, and the workflow steps it marked ERROR counted by their workflows: one transaction."""
    # Here: the workflows' enqueue sits above maintenance's imports of the models.
    from ..enqueue.workflows import steps_ended

    tags = {row.id: row.options["workflow"] for row in steps}
    with transaction.atomic(using=ops.connection.alias, savepoint=False):
        released = ops.release_lapsed(now, [outcome for _, outcome in outcomes.values()])
        ended = [(pk, tags[pk], ERROR) for pk in released if pk in tags and outcomes[pk][1].status == ERROR]
        if ended:
            steps_ended(ops, ended, now)
    return released


def _count_released(ops, lapsed, outcomes, released, now):
    """Count the recovered attempts in the statistics: retried, or ended ERROR, per queue."""
    queues = {row.id: row.queue for row in lapsed}
    names = {WAITING: "retried", CANCELLED: "cancelled"}
    counts = Counter(
        (queues[task_id], names.get(outcomes[task_id][1].status, "error")) for task_id in released
    )
    for (queue, outcome), count in counts.items():
        record_finished(ops.connection.alias, queue, outcome, count, now)


def _asked_to_stop(ops, ids):
    """The ids among ``ids`` whose stop was asked for (``DelayedTask.stop()``): never retried."""
    if not ids:
        return set()
    rows = TaskQueue.objects.using(ops.connection.alias).filter(pk__in=ids, stop_requested_at__isnull=False)
    return set(rows.values_list("pk", flat=True))


def _lost_outcome(row, now, stopped=False):
    """The outcome of an attempt cut off by its worker's loss: a retry if attempts remain, else ERROR.

    CANCELLED when the task was asked to stop: a stopped task is never retried.
    """
    worker_id = row.worker_id
    message = (
        f"the worker running this task ({worker_id or 'unknown'}) died or lost the database "
        f"before it reported an outcome (killed, crashed, or stopped at once); its lease had "
        f"lapsed when it was recovered at {now.isoformat()}"
    )
    entry = {
        "attempt": row.attempts,
        "worker_id": worker_id,
        "finished_at": now.isoformat(),
        "exception": "autotask.exceptions.WorkerLost",
        "error": message,
        "traceback": "",
    }
    if stopped:
        return Outcome(
            id=row.id,
            status=CANCELLED,
            finished_at=now,
            error_message=f"stopped on request: {message}",
            expires_at=now + CANCELLED_KEPT,
            history=[*row.history, entry],
        )
    retry = row.attempts < row.max_attempts
    return Outcome(
        id=row.id,
        status=WAITING if retry else ERROR,
        finished_at=now,
        error_message=message,
        retry_at=now if retry else None,
        expires_at=None if retry else failed_expiry(row.options, now),
        history=[*row.history, entry],
    )
