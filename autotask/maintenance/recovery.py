"""Lease recovery: tasks of workers that died are given back, or marked ERROR."""

import logging
from datetime import timedelta

from ..db.base import Outcome
from ..task import ERROR, WAITING

logger = logging.getLogger("autotask")

RECOVER_BATCH = 100  # lapsed leases handled per pass


def recover(ops, now):
    """Give lapsed leases back: retry if attempts remain, else ERROR. Return the count."""
    recovered = 0
    for task_id, attempts, max_attempts, ttl, worker_id, history in ops.lapsed_leases(now, RECOVER_BATCH):
        message = (
            f"the worker running this task ({worker_id or 'unknown'}) died or lost the database "
            f"before it reported an outcome (killed, crashed, or stopped at once); its lease had "
            f"lapsed when it was recovered at {now.isoformat()}"
        )
        entry = {
            "attempt": attempts,
            "worker_id": worker_id,
            "finished_at": now.isoformat(),
            "exception": "autotask.exceptions.WorkerLost",
            "error": message,
            "traceback": "",
        }
        retry = attempts < max_attempts
        outcome = Outcome(
            id=task_id,
            status=WAITING if retry else ERROR,
            finished_at=now,
            error_message=message,
            retry_at=now if retry else None,
            expires_at=None if retry else now + timedelta(seconds=ttl),
            history=[*history, entry],
        )
        if ops.release_lapsed(task_id, now, outcome):
            recovered += 1
            logger.warning(
                "task #%s recovered from a lost worker: %s",
                task_id,
                "retrying" if retry else "marked ERROR",
                extra={"task_id": task_id, "worker_id": worker_id, "outcome": "recovered"},
            )
    return recovered
