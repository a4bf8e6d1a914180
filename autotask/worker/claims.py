"""Claim sizing: how many tasks the worker claims, from how long tasks and claims take here."""

from ..conf import conf

# Claiming ahead: a worker whose tasks are short claims, beyond its free slots,
# as many as it expects to start within a window of PREFETCH_WINDOW seconds (at
# most AUTOTASK_PREFETCH tasks), widened to three database round trips so that
# the buffer lasts until the next claim returns, but never past
# MAX_PREFETCH_WINDOW.  One claim and one completion statement then serve a
# whole batch, and no task waits here long while another worker could run it.
PREFETCH_WINDOW = 0.02
MAX_PREFETCH_WINDOW = 0.1
# Claimed-ahead tasks are only claimed in the database (started_at NULL, no
# attempt used): a worker that dies gives them back for free.  Before a pool
# thread may call one, the main thread marks it started, in batches that keep
# up to START_BATCH tasks marked beyond the idle slots, refilled when what is
# left would last about two round trips.  So a killed worker charges an
# attempt to at most that many tasks it had not called yet, and one statement
# marks many short tasks.
START_BATCH = 50


class ClaimSizing:
    """How long tasks and claims take here, and so how many tasks to claim.

    Owned by the main thread: it alone writes every field.  Pool threads report
    how long each task took through the outcome channel
    (:meth:`autotask.worker.outcomes.Outcomes.report`), and the main thread
    feeds those durations to :meth:`timed` as it collects them.  Pool threads
    read ``low_water`` and ``start_floor`` to decide when to wake the main
    thread (one attribute read each: a stale value moves a wake-up by a loop
    turn at most).
    """

    def __init__(self, concurrency):
        self.concurrency = concurrency
        # The event loop's slots (autotask.worker.aio), counted once an async task was seen: claimed
        # for as they free up, never ahead (a coroutine waits, it does not end within the window).
        self.loop_slots = 0
        self.task_seconds = None  # how long tasks take here, recent-weighted (None: no task yet)
        self.round_trip = 0.0  # seconds a claim takes, recent-weighted
        self.backlog = False  # the last claim came back full: more work is probably due
        self.low_water = 0  # pool threads ask for a claim when the buffer is down to this
        self.start_floor = 1  # pool threads ask for more tasks marked started below this many

    def timed(self, seconds):
        """Track how long tasks take: up at once after a long one, down gradually."""
        previous = self.task_seconds
        if previous is None or seconds > previous:
            self.task_seconds = seconds
        else:
            self.task_seconds = 0.9 * previous + 0.1 * seconds

    def claimed(self, asked, got, seconds):
        """Track a claim that asked for ``asked`` tasks, got ``got`` and took ``seconds``."""
        self.round_trip = 0.8 * self.round_trip + 0.2 * seconds
        self.backlog = got == asked

    def prefetch(self):
        """Return how many tasks to claim beyond the free slots (0 until tasks prove short)."""
        seconds, limit = self.task_seconds, conf.PREFETCH
        if not limit or seconds is None:
            return 0
        window = min(MAX_PREFETCH_WINDOW, max(PREFETCH_WINDOW, 3 * self.round_trip))
        return min(limit, int(window * self.concurrency / max(seconds, 1e-6)))

    def claim_size(self, running, buffered):
        """Return how many tasks to claim now: fill the free slots and the buffer, or none.

        ``running`` counts the tasks held here, ``buffered`` those of them no
        pool thread has taken yet.
        """
        # Claim ahead only into a backlog.  A claim that finds fewer tasks than
        # it asks for reads past every waiting row not due yet: an idle worker
        # asks for its free slots only, which the first due rows satisfy.
        prefetch = self.prefetch() if self.backlog else 0
        self.low_water = prefetch // 2
        slots = self.concurrency + self.loop_slots
        if running >= slots and buffered > self.low_water:
            return 0  # every slot busy and enough claimed ahead: claim later, a bigger batch
        return max(0, slots + prefetch - running)

    def update_start_floor(self):
        """Set and return how many marked tasks to keep queued: those that start during two round trips."""
        seconds = self.task_seconds or 1.0
        self.start_floor = max(
            1, min(START_BATCH // 4, int(2 * self.round_trip * self.concurrency / max(seconds, 1e-6)))
        )
        return self.start_floor
