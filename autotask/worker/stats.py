"""This worker's statistics: counted in memory as outcomes are collected, written every few seconds."""

import time
from bisect import bisect_left
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from ..models import FIGURE_FIELDS, HISTOGRAM_BOUNDS_MS
from ..task import CANCELLED, DONE, ERROR, WAITING

# Seconds between writes: the dashboard's current minute lags this much at
# most, and a worker writes a few statements this often, however many tasks it runs.
WRITE_EVERY = 5.0
OUTCOME_NAMES = {DONE: "done", ERROR: "error", WAITING: "retried", CANCELLED: "cancelled"}
# Positions in a figures list (ordered like FIGURE_FIELDS).
COUNT, PICKUP_SUM, RUN_SUM = 0, 1, 2
PICKUP_BUCKET0 = 3
RUN_BUCKET0 = PICKUP_BUCKET0 + len(HISTOGRAM_BOUNDS_MS) + 1


def new_figures():
    return [0] * len(FIGURE_FIELDS)


NOTHING = tuple(new_figures())  # a minute not written yet


def add_to(figures, pickup_ms, run_ms):
    """Count one task in ``figures``."""
    figures[COUNT] += 1
    figures[PICKUP_SUM] += pickup_ms
    figures[RUN_SUM] += run_ms
    # bisect_left: a value equal to a bound belongs to that bound's bucket ("<=").
    figures[PICKUP_BUCKET0 + bisect_left(HISTOGRAM_BOUNDS_MS, pickup_ms)] += 1
    figures[RUN_BUCKET0 + bisect_left(HISTOGRAM_BOUNDS_MS, run_ms)] += 1


class TaskStatsBuffer:
    """Figures of the tasks this worker finished, not yet written (main thread only).

    ``minutes`` holds each minute's figures whole (the write replaces this
    worker's row of that minute, so a write that failed is simply done again);
    ``stored`` the figures of each minute as last written: what a minute gained
    since is what the next write adds to the totals (worked out per write, not
    per task).
    """

    def __init__(self):
        self.minutes = {}  # (epoch minute, queue, outcome) -> figures
        self.changed = set()  # keys of ``minutes`` changed since the last write
        self.stored = {}  # (epoch minute, queue, outcome) -> figures as last written
        self.next_write = time.monotonic() + WRITE_EVERY
        # A claim's raw rows skip Django's converters: SQLite gives naive datetimes
        # (or text), in UTC under USE_TZ, else in the default time zone.
        self.naive_zone = UTC if settings.USE_TZ else timezone.get_default_timezone()

    def add(self, task, outcome, seconds, started_wall):
        """Count a task that ended with ``outcome`` after running ``seconds`` from ``started_wall``."""
        name = OUTCOME_NAMES.get(outcome.status)
        if name is None:
            return
        pickup_ms = max(0.0, (started_wall - self._epoch(task.scheduled_at, started_wall)) * 1000.0)
        key = (int((started_wall + seconds) // 60), task.queue, name)
        figures = self.minutes.get(key)
        if figures is None:
            figures = self.minutes[key] = new_figures()
        add_to(figures, pickup_ms, seconds * 1000.0)
        self.changed.add(key)

    def _epoch(self, due, default):
        """Seconds since the epoch of a claimed row's due time (a few microseconds: once per task)."""
        if due is None:
            return default
        if isinstance(due, str):
            due = datetime.fromisoformat(due)
        if due.tzinfo is None:
            due = due.replace(tzinfo=self.naive_zone)
        return due.timestamp()

    def due(self, now=None):
        """True when there is something to write and the last write is WRITE_EVERY seconds old."""
        return bool(self.changed) and (now or time.monotonic()) >= self.next_write

    def seconds_to_write(self):
        """Seconds until the next write is due (infinite: nothing to write)."""
        if not self.changed:
            return float("inf")
        return max(0.0, self.next_write - time.monotonic())

    def to_write(self):
        """Return what to write: the changed minute rows whole, and what to add to the totals.

        As ({(minute, queue, outcome): {field: value}}, {(queue, outcome): {field: value}}).
        """
        minutes, totals = {}, {}
        for key in self.changed:
            minute, queue, outcome = key
            figures = self.minutes[key]
            minutes[(datetime.fromtimestamp(minute * 60, UTC), queue, outcome)] = dict(
                zip(FIGURE_FIELDS, figures, strict=True)
            )
            total = totals.setdefault((queue, outcome), new_figures())
            before = self.stored.get(key, NOTHING)
            for index, value in enumerate(figures):
                total[index] += value - before[index]
        named = {key: dict(zip(FIGURE_FIELDS, figures, strict=True)) for key, figures in totals.items()}
        return minutes, named

    def written(self, now_wall=None):
        """Remember what was written; keep only the current minute's figures (its row is rewritten whole)."""
        for key in self.changed:
            self.stored[key] = list(self.minutes[key])
        current = int((now_wall or time.time()) // 60)
        self.minutes = {key: figures for key, figures in self.minutes.items() if key[0] >= current}
        self.stored = {key: figures for key, figures in self.stored.items() if key[0] >= current}
        self.changed = set()
        self.next_write = time.monotonic() + WRITE_EVERY

    def retry_later(self):
        self.next_write = time.monotonic() + WRITE_EVERY
