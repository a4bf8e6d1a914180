"""Pruning: finished rows past their ttl are deleted in batches."""

import logging
import time

from django.utils import timezone

from ..conf import conf
from ..models import Workflow
from ..task import FINISHED

logger = logging.getLogger("autotask")


PRUNE_TIME_BUDGET = 2.0  # seconds one prune pass may take before the loop runs tasks again


def prune(ops, now=None, batch=None):
    """Delete finished rows past their ttl, in batches; return how many were deleted."""
    return prune_pass(ops, now, batch)[0]


def prune_pass(ops, now=None, batch=None, budget=None):
    """Delete finished rows past their ttl, in batches, for ``budget`` seconds at most (PRUNE_TIME_BUDGET).

    Return how many were deleted and whether the pass finished (its last
    batch came back short: nothing expired is left, or only rows another
    transaction holds).  A worker whose pass ran out of time prunes again
    soon rather than AUTOTASK_CLEAN_INTERVALL later, so that pruning keeps
    up with any sustained rate of finished tasks.
    """
    now = now or timezone.now()
    batch = batch or conf.CLEAN_BATCH_SIZE
    deadline = time.monotonic() + (PRUNE_TIME_BUDGET if budget is None else budget)
    total = 0
    while True:
        deleted = ops.prune(now, batch)
        total += deleted
        if deleted < batch or time.monotonic() >= deadline:
            break
    if total:
        logger.info("pruned %s expired task rows", total, extra={"outcome": "pruned", "count": total})
    prune_workflows(ops.connection.alias, now, batch)
    return total, deleted < batch


def prune_workflows(using, now, batch):
    """Delete up to ``batch`` ended workflows whose ttl lapsed (their steps are pruned as tasks)."""
    ended = Workflow.objects.using(using).filter(status__in=FINISHED, expires_at__lte=now).order_by()
    ids = list(ended.values_list("id", flat=True)[:batch])
    if ids:
        Workflow.objects.using(using).filter(id__in=ids, status__in=FINISHED).delete()
    return len(ids)
