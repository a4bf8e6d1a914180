"""The tasks held by a worker, on their way to its pool threads."""

import logging
import threading
import time
from collections import deque

from .claims import START_BATCH
from .executor import execute
from .stops import Stops

logger = logging.getLogger("autotask")

# Seconds claimed-ahead tasks may wait for a slot before they are given back to
# the queue (a task turned out long after all): then another worker runs them.
HOLD_SECONDS = 0.1


class TaskPool:
    """The tasks claimed here, from the claim to the end of their run.

    Guarded by ``lock``: ``ready`` (tasks marked started that no pool thread
    has taken yet, oldest first) and ``executing`` (pool threads inside a
    task): a pool thread takes a task and counts it in one step.

    Main thread only: ``ahead`` (claimed ahead, not marked started yet),
    ``unreleased`` (tasks to give back), ``runners`` (pool threads started on
    ``ready``; each reports its end through the outcome channel), ``running``
    and ``active`` (tasks held here whose outcome is not collected yet, and
    their ids: only their leases are renewed).

    ``last_start`` (monotonic time a task last started or was claimed) is
    written by whichever thread starts one: a float, the last write wins,
    which is all the hold limit needs.

    The pool threads run :meth:`run_ready`; they report outcomes to
    ``outcomes`` and wake the main thread through ``wakeups``.  The database
    calls (marking started, giving back) stay with the worker, which passes
    what they return to :meth:`started` and :meth:`released`.
    """

    def __init__(self, concurrency, worker_id, sizing, outcomes, wakeups, aio=None, stops=None, runner=None):
        self.concurrency = concurrency
        self.aio = aio  # the event loop of async tasks (autotask.worker.aio), or None: they run on threads
        # The attempts running here (to stop them), and what runs a task:
        # ``runner(task, current)`` (a child process pool), or here when None.
        self.stops = stops if stops is not None else Stops()
        self.runner = runner
        self.worker_id = worker_id
        self.sizing = sizing
        self.outcomes = outcomes
        self.wakeups = wakeups
        self.lock = threading.Lock()
        self.ready = deque()
        self.executing = 0
        self.ahead = deque()
        self.unreleased = []
        self.runners = 0
        self.running = 0
        self.active = set()
        self.last_start = 0.0
        self.held_sync = False  # the last held_too_long() found sync tasks held (main thread)

    # -- the main thread ---------------------------------------------------

    def buffered(self):
        """How many tasks held here no pool thread has taken yet."""
        return len(self.ready) + len(self.ahead)

    def busy(self):
        """True while tasks are buffered or pool threads (or the event loop) run them."""
        return bool(self.ready or self.ahead or self.runners or (self.aio and self.aio.in_flight))

    @property
    def slots(self):
        """Tasks this worker runs at once: its threads, and its event loop's once it knows async tasks.

        Claims are by queue, not by kind: the loop's slots count only once an
        async task was declared in this process or claimed here
        (:attr:`AsyncRunner.offered <autotask.worker.aio.AsyncRunner.offered>`),
        so a worker of sync tasks claims as many as its threads can start.
        """
        aio = self.aio
        return self.concurrency + aio.capacity if aio is not None and aio.offered else self.concurrency

    def claim_started(self, free):
        """Whether a claim of ``free`` tasks marks them started (they start at once) or only claims them.

        With the event loop's slots counted, a claim brings tasks of either
        kind: each is marked started once a slot of its kind is free.
        """
        if self.aio is not None and self.aio.offered:
            return False
        return free <= self.concurrency - self.running and not self.ahead

    def take_on(self, claimed, started):
        """Hold ``claimed`` tasks: ready to run if the claim marked them ``started``, else ahead."""
        self.running += len(claimed)
        self.active.update(task.id for task in claimed)
        self.last_start = time.monotonic()
        if not started:
            self.ahead.extend(claimed)
        elif self.aio is None:
            self.ready.extend(claimed)
        else:
            self._route(claimed)

    def to_start(self):
        """Take the claimed-ahead tasks to mark started now (none while enough are marked)."""
        with self.lock:
            idle, queued = self.concurrency - self.executing, len(self.ready)
        budget = 0 if queued > idle + self.sizing.update_start_floor() else idle + START_BATCH - queued
        aio = self.aio
        if aio is None or not aio.offered:
            # Enough marked to go on with until the next loop turn, or this many more.
            return [self.ahead.popleft() for _ in range(min(len(self.ahead), budget))]
        # Each kind up to its own free slots (sync ones: and a batch beyond), oldest first.
        free, taken, kept = aio.free(), [], deque()
        for task in self.ahead:
            if self._on_loop(task):
                if free > 0:
                    free -= 1
                    taken.append(task)
                    continue
            elif budget > 0:
                budget -= 1
                taken.append(task)
                continue
            kept.append(task)
        self.ahead = kept
        return taken

    def started(self, tasks, marked):
        """Hand the ``tasks`` the database ``marked`` started (ids; False: not marked) to the pool threads."""
        if marked is False:
            self.ahead.extendleft(reversed(tasks))  # not marked: again at the next loop turn
            return
        marked, ready = set(marked), []
        for task in tasks:
            if task.id in marked:
                task.attempts += 1  # the attempt start() counted
                ready.append(task)
            else:
                # No longer held here (its lease lapsed and it was recovered): it must not run here.
                logger.warning("task #%s was recovered from this worker before it started; skipped", task.id)
                self.active.discard(task.id)
                self.running -= 1
        if self.aio is None:
            self.ready.extend(ready)
        else:
            self._route(ready)

    def _on_loop(self, task):
        """True when ``task`` runs on the event loop: async, and not for a child process."""
        runner = self.runner
        return not (runner is not None and runner.routes(task)) and self.aio.takes(task)

    def _route(self, tasks):
        """Hand tasks marked started to the event loop (async ones) or the pool threads (the rest)."""
        aio = self.aio
        on_loop = []
        for task in tasks:
            if self._on_loop(task):
                on_loop.append(task)
            else:
                self.ready.append(task)
        if on_loop:
            aio.last_start = time.monotonic()
            aio.submit(on_loop)

    def hold_back(self, tasks):
        """Hold claimed ``tasks`` only to give them back (``unreleased``): they do not run here."""
        self.running += len(tasks)
        self.active.update(task.id for task in tasks)
        self.unreleased.extend(tasks)

    def dropped(self, tasks):
        """Forget claimed-ahead ``tasks`` the database no longer holds for this worker (given back)."""
        for task in tasks:
            self.active.discard(task.id)
        self.running -= len(tasks)

    def held_too_long(self):
        """Seconds no slot has started a task, when claimed-ahead tasks waited past HOLD_SECONDS.

        With async tasks each kind waits for slots of its own: sync tasks are
        held too long when no thread started a task for HOLD_SECONDS, async
        ones when the event loop started none, whatever the other kind does.
        """
        now = time.monotonic()
        waited = now - self.last_start
        aio = self.aio
        self.held_sync = bool(self.ready)
        if aio is not None and aio.offered and self.ahead:
            kinds = {self._on_loop(task) for task in self.ahead}
            self.held_sync = self.held_sync or False in kinds
            held = [waited] if self.held_sync else []
            if True in kinds:
                held.append(now - aio.last_start)
            waited = max(held)
        elif not (self.ready or self.ahead):
            return None
        return waited if waited > HOLD_SECONDS else None

    def take_ready(self, keep=0):
        """Remove and return the claimed tasks no pool thread has started.

        With ``keep``, leave the oldest of them for the slots free of ``keep``
        (counting the tasks running now): those start, the newest come back.
        Those not marked started come back first.
        """
        taken = [self.ahead.pop() for _ in range(len(self.ahead))]
        with self.lock:
            left = max(0, keep - self.executing)
            return taken + [self.ready.pop() for _ in range(max(0, len(self.ready) - left))]

    def released(self):
        """The ``unreleased`` tasks are back in the queue: no longer held here."""
        for task in self.unreleased:
            self.active.discard(task.id)
        self.running -= len(self.unreleased)
        self.unreleased = []

    def ended(self, task_ids, runners_done):
        """Forget tasks whose outcome was collected, and pool threads that stopped."""
        self.running -= len(task_ids)
        self.active.difference_update(task_ids)
        self.runners -= runners_done

    def dispatch(self, executor):
        """Start pool threads for the tasks marked started, up to the free threads."""
        # A runner drains the buffer, so one more per waiting task, up to the free threads.
        for _ in range(min(self.concurrency - self.runners, len(self.ready))):
            self.runners += 1
            executor.submit(self.run_ready)

    # -- pool threads ------------------------------------------------------

    def run_ready(self):
        """Run claimed tasks, oldest first, until none is left (in a pool thread)."""
        sizing, wakeups = self.sizing, self.wakeups
        try:
            while True:
                with self.lock:
                    if not self.ready:
                        return
                    task = self.ready.popleft()
                    self.executing += 1
                self.last_start = time.monotonic()
                try:
                    self._execute(task)
                finally:
                    with self.lock:
                        self.executing -= 1
                if not wakeups.nudged and (
                    len(self.ready) + len(self.ahead) <= sizing.low_water
                    or (self.ahead and len(self.ready) <= sizing.start_floor)
                    or self.outcomes.full()
                ):
                    # Time to claim more, or to write a full batch of outcomes.
                    wakeups.nudge()
        finally:
            self.outcomes.runner_done()
            wakeups.wake()

    def _execute(self, task):
        started, started_wall = time.monotonic(), time.time()
        stops = self.stops
        current = stops.begin(task, self.worker_id)
        try:
            runner = self.runner
            if runner is not None and runner.routes(task):
                outcome = runner.run(task, current)
            else:
                outcome = execute(task, self.worker_id, current=current)
        except BaseException:
            logger.exception("executing task %s crashed the executor", task.id)
            outcome = None
        finally:
            stops.end(task.id)
        self.outcomes.report(task, outcome, time.monotonic() - started, started_wall)
