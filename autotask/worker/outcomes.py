"""The outcome buffer: what pool threads report, gathered for the next write."""

import queue as queue_module
import time

RUNNER_DONE = object()  # a pool thread's "the claimed-ahead buffer is empty, I stopped"
# Outcomes are written in batches while tasks keep running: when this many
# have gathered, when the oldest has waited FLUSH_DELAY seconds, together with
# the next claim, or at once when the worker has nothing else to run.
FLUSH_BATCH = 100
FLUSH_DELAY = 0.05


class Outcomes:
    """Outcomes of finished tasks, from the pool threads to the database.

    Pool threads only put into ``channel`` (a thread-safe queue), through
    :meth:`report` and :meth:`runner_done`, and read its size (:meth:`full`).
    The main thread drains it (:meth:`collect`) and alone owns ``pending`` and
    ``pending_since``.
    """

    def __init__(self):
        self.channel = queue_module.SimpleQueue()
        self.pending = []  # outcomes not yet written (kept across database errors)
        self.pending_since = 0.0  # monotonic time the oldest unwritten outcome was collected

    # -- pool threads ------------------------------------------------------

    def report(self, task, outcome, seconds, started_wall):
        """Report a task that ran ``seconds`` from ``started_wall`` (``outcome`` None: executor crashed)."""
        self.channel.put((task, outcome, seconds, started_wall))

    def runner_done(self):
        self.channel.put(RUNNER_DONE)

    def full(self):
        """True when a batch worth writing has been reported."""
        return self.channel.qsize() >= FLUSH_BATCH

    # -- the main thread ---------------------------------------------------

    def collect(self):
        """Move the reported outcomes to ``pending``.

        Return the tasks that ended, as (task, outcome, seconds, started_wall),
        and how many pool threads stopped.
        """
        ended, runners_done = [], 0
        while True:
            try:
                item = self.channel.get_nowait()
            except queue_module.Empty:
                return ended, runners_done
            if item is RUNNER_DONE:
                runners_done += 1
                continue
            ended.append(item)
            outcome = item[1]
            if outcome is not None:
                if not self.pending:
                    self.pending_since = time.monotonic()
                self.pending.append(outcome)

    def written(self):
        """Forget the pending outcomes: stored (nothing is collected while they are written)."""
        self.pending = []

    def due(self, busy):
        """Return True when the pending outcomes should be written now (``busy``: work is buffered here)."""
        if not self.pending:
            return False
        if not busy:
            return True  # nothing else to do: write at once, waiting callers see results sooner
        return len(self.pending) >= FLUSH_BATCH or time.monotonic() - self.pending_since >= FLUSH_DELAY

    def seconds_to_due(self):
        """Seconds until the pending outcomes are due for writing (None: none pending)."""
        if not self.pending:
            return None
        return max(0.0, self.pending_since + FLUSH_DELAY - time.monotonic())
