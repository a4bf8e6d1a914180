"""The task statistics: this worker's minute rows and the totals written, old minutes pruned."""

import logging
from datetime import timedelta

from django.db import connections, transaction
from django.utils import timezone

from ..conf import conf
from ..models import FIGURE_FIELDS, TaskStats, TaskStatsTotal
from ..timeutil import stored

logger = logging.getLogger("autotask")

MINUTE_KEY = ["minute", "worker_id", "queue", "outcome"]


def write_stats(using, worker_id, minutes, totals):
    """Write ``worker_id``'s minute rows (replacing its rows of those minutes) and add to the totals.

    ``minutes``: {(minute, queue, outcome): {field: value}}, each minute's
    figures whole; ``totals``: {(queue, outcome): {field: value}}, what to add.
    One transaction: a failed write leaves both as they were, to be written again.
    """
    rows = [
        TaskStats(minute=stored(minute), worker_id=worker_id, queue=queue, outcome=outcome, **figures)
        for (minute, queue, outcome), figures in minutes.items()
    ]
    # MySQL's upsert names no conflict target (its ON DUPLICATE KEY takes any unique key).
    target = MINUTE_KEY if connections[using].features.supports_update_conflicts_with_target else None
    with transaction.atomic(using=using):
        if rows:
            TaskStats.objects.using(using).bulk_create(
                rows, update_conflicts=True, unique_fields=target, update_fields=FIGURE_FIELDS
            )
        for (queue, outcome), figures in totals.items():
            TaskStatsTotal.objects.using(using).add({"queue": queue, "outcome": outcome}, figures)


def prune_stats(using, now=None):
    """Delete the minute rows older than AUTOTASK_STATS_KEEP; return how many."""
    before = (now or timezone.now()) - timedelta(seconds=conf.STATS_KEEP)
    # Nothing references a statistics row: one DELETE statement, on the minute index.
    deleted, _ = TaskStats.objects.using(using).filter(minute__lt=before).order_by().delete()
    if deleted:
        logger.info("pruned %s minute rows of task statistics", deleted, extra={"count": deleted})
    return deleted


__all__ = ["prune_stats", "write_stats"]
