"""Which of a worker's tasks were asked to stop (``DelayedTask.stop()``, the admin)."""

from ..models import TaskQueue
from ..task import RUNNING

BATCH = 500  # ids per statement (well below every database's parameter limit)


def stop_requests(using, ids):
    """The ids among ``ids`` (tasks a worker holds) whose stop was asked for."""
    ids = sorted(ids)
    asked = []
    rows = TaskQueue.objects.using(using).filter(status=RUNNING, stop_requested_at__isnull=False)
    for start in range(0, len(ids), BATCH):
        asked.extend(rows.filter(pk__in=ids[start : start + BATCH]).values_list("pk", flat=True))
    return asked
