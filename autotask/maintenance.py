"""Lease recovery, result pruning and worker heartbeats; each returns what it did."""

import logging
import time
from datetime import timedelta

from django.db import ProgrammingError
from django.utils import timezone

from .conf import conf
from .db.base import Outcome
from .registry import failed_expiry
from .task import ERROR, WAITING

logger = logging.getLogger("autotask")

RECOVER_BATCH = 100  # lapsed leases read and released per statement
RECOVER_TIME_BUDGET = 2.0  # seconds one recovery pass may take before the loop runs tasks again
PRUNE_TIME_BUDGET = 2.0  # seconds one prune pass may take before the loop runs tasks again


class Timers:
    """When each periodic duty of a worker is next due (monotonic seconds)."""

    def __init__(self):
        now = time.monotonic()
        # Everything runs once at start-up: a restarted worker recovers at once.
        self.next = {"heartbeat": now, "recover": now, "prune": now, "schedule": now}

    @staticmethod
    def interval(name):
        lease = conf.LEASE_SECONDS
        return {
            "heartbeat": lease / 3,  # renew leases well before they lapse
            "recover": lease / 2,
            "prune": conf.CLEAN_INTERVALL,
            "schedule": 1.0,
        }[name]

    def due(self, now):
        names = [name for name, at in self.next.items() if at <= now]
        for name in names:
            self.next[name] = now + self.interval(name)
        return names

    def set_next(self, name, at):
        self.next[name] = at

    def seconds_to_next(self):
        return max(0.0, min(self.next.values()) - time.monotonic())


def heartbeat(worker, now):
    """Record that ``worker`` is alive (for the admin and the status command)."""
    from .models import Worker

    updated = Worker.objects.using(worker.using).filter(worker_id=worker.worker_id).update(last_seen=now)
    if not updated:
        hostname, pid = worker.worker_id.split(":")[:2]
        Worker.objects.using(worker.using).create(
            worker_id=worker.worker_id,
            hostname=hostname,
            pid=int(pid),
            queues=",".join(worker.queues or []),
            concurrency=worker.concurrency,
            started_at=now,
            last_seen=now,
        )
    # Rows of workers silent for ten leases are gone for good.
    stale = now - timedelta(seconds=conf.LEASE_SECONDS * 10)
    Worker.objects.using(worker.using).filter(last_seen__lt=stale).delete()


def forget_worker(worker):
    from .models import Worker

    Worker.objects.using(worker.using).filter(worker_id=worker.worker_id).delete()


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
        logger.warning(
            "%s tasks claimed but not started by a lost worker are waiting again (no attempt used)",
            given_back,
            extra={"outcome": "recovered", "count": given_back},
        )
    outcomes = {}
    for row in lapsed:
        if row.started:
            outcomes[row.id] = (row.worker_id, _lost_outcome(row, now))
    released = ops.release_lapsed(now, [outcome for _, outcome in outcomes.values()])
    for task_id in released:
        worker_id, outcome = outcomes[task_id]
        logger.warning(
            "task #%s recovered from a lost worker: %s",
            task_id,
            "retrying" if outcome.status == WAITING else "marked ERROR",
            extra={"task_id": task_id, "worker_id": worker_id, "outcome": "recovered"},
        )
    return given_back + len(released)


def _lost_outcome(row, now):
    """The outcome of an attempt cut off by its worker's loss: a retry if attempts remain, else ERROR."""
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


def prune(ops, now=None, batch=None):
    """Delete finished rows past their ttl, in batches; return how many were deleted."""
    now = now or timezone.now()
    batch = batch or conf.CLEAN_BATCH_SIZE
    deadline = time.monotonic() + PRUNE_TIME_BUDGET
    total = 0
    while True:
        deleted = ops.prune(now, batch)
        total += deleted
        if deleted < batch or time.monotonic() > deadline:
            break
    if total:
        logger.info("pruned %s expired task rows", total, extra={"outcome": "pruned", "count": total})
    return total


def hint_for(exc):
    """A fix hint for errors that are misconfiguration rather than an outage."""
    if isinstance(exc, ProgrammingError) or "no such table" in str(exc):
        return " (is the autotask table missing? run 'manage.py migrate')"
    return ""
