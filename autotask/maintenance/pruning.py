"""Pruning: finished rows past their ttl are deleted in batches."""

import logging
import time

from django.utils import timezone

from ..conf import conf

logger = logging.getLogger("autotask")


PRUNE_TIME_BUDGET = 2.0  # seconds one prune pass may take before the loop runs tasks again


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
