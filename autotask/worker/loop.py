"""The worker loop: wait, claim up to the free slots, execute, write outcomes back.

One main thread owns the worker's own database connection (kept open across
tasks) and does all the queue bookkeeping; task functions run in a pool of
``concurrency`` threads, each with the connections Django gives that thread.
"""

import logging
import os
import queue as queue_module
import select
import signal
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import DatabaseError, connections
from django.utils import timezone

from ..conf import conf
from ..db import hint_for, new_ops
from ..maintenance import scheduling
from ..maintenance.heartbeat import forget_worker, heartbeat
from ..maintenance.pruning import prune
from ..maintenance.recovery import recover
from ..maintenance.timers import Timers
from ..task import DONE, WAITING
from . import identity
from .executor import execute
from .parent import ParentLink

logger = logging.getLogger("autotask")

MAX_BACKOFF = 5.0  # seconds: the longest pause between attempts to reach the database
# Claiming ahead: a worker whose tasks are short claims, beyond its free slots,
# as many as it expects to start within a window of PREFETCH_WINDOW seconds (at
# most AUTOTASK_PREFETCH tasks), widened to three database round trips so that
# the buffer lasts until the next claim returns, but never past
# MAX_PREFETCH_WINDOW.  One claim and one completion statement then serve a
# whole batch, and no task waits here long while another worker could run it.
PREFETCH_WINDOW = 0.02
MAX_PREFETCH_WINDOW = 0.1
# Seconds claimed-ahead tasks may wait for a slot before they are given back to
# the queue (a task turned out long after all): then another worker runs them.
HOLD_SECONDS = 0.1
# Claimed-ahead tasks are only claimed in the database (started_at NULL, no
# attempt used): a worker that dies gives them back for free.  Before a pool
# thread may call one, the main thread marks it started, in batches that keep
# up to START_BATCH tasks marked beyond the idle slots, refilled when what is
# left would last about two round trips.  So a killed worker charges an
# attempt to at most that many tasks it had not called yet, and one statement
# marks many short tasks.
START_BATCH = 50
RUNNER_DONE = object()  # a pool thread's "the claimed-ahead buffer is empty, I stopped"
# Outcomes are written in batches while tasks keep running: when this many
# have gathered, when the oldest has waited FLUSH_DELAY seconds, together with
# the next claim, or at once when the worker has nothing else to run.
FLUSH_BATCH = 100
FLUSH_DELAY = 0.05
# Without LISTEN, a waiting worker whose database tells when another connection
# wrote (SQLite's data_version) asks it this often, and looks for a due task
# when it changed: tasks enqueued by other processes start within about this
# long, not the idle time.
CHANGE_POLL = 0.05


def new_worker_id():
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Run tasks until stopped (or, with ``drain``, until nothing is due)."""

    def __init__(
        self,
        queues=None,
        concurrency=None,
        drain=False,
        idle_time=None,
        listen=None,
        using=None,
        worker_id=None,
        handle_signals=True,
        identify=False,
    ):
        self.queues = list(queues or conf.QUEUES or []) or None
        self.concurrency = concurrency or conf.CONCURRENCY
        self.drain = drain
        self.idle_time = conf.HANDLE_TASK_IDLE_TIME if idle_time is None else idle_time
        self.listen = conf.LISTEN if listen is None else listen
        self.using = using or conf.DATABASE
        self.worker_id = worker_id or new_worker_id()
        self.handle_signals = handle_signals
        # A worker process of its own (run_autotask) names itself: in
        # PostgreSQL's application_name and, with setproctitle, its process title.
        self.title = None
        if identify:
            identity.label_connections(self.worker_id)
            self.title = identity.ProcessTitle(self.worker_id, self.queues)
        self.lease = timedelta(seconds=conf.LEASE_SECONDS)
        # An ops object of its own: what own_session() sets up is this worker's.
        connection = connections[self.using]
        self.ops = new_ops(connection)
        # Prepared statements and session settings, like LISTEN, need a session
        # of the worker's own: behind a pooler in transaction mode
        # (AUTOTASK_LISTEN off) none is used, nor with Django's connection pool
        # (OPTIONS "pool"), which hands a closed connection's session on.
        if self.listen and not connection.settings_dict.get("OPTIONS", {}).get("pool"):
            self.ops.own_session(self.queues)
        self.outcomes = queue_module.SimpleQueue()  # filled by pool threads
        self.pending = []  # outcomes not yet written (kept across database errors)
        self.running = 0  # tasks claimed here whose outcome is not collected yet
        self.active = set()  # ids of the tasks running here: only their leases are renewed
        self.ready = deque()  # tasks marked started that no pool thread has taken yet (FIFO)
        self.ahead = deque()  # claimed ahead, not marked started yet (main thread only)
        self.ready_lock = threading.Lock()  # a pool thread takes a task and counts it as one step
        self.executing = 0  # pool threads inside a task (under ready_lock)
        self.runners = 0  # pool threads running tasks from self.ready
        self.task_seconds = None  # how long tasks take here, recent-weighted (None: no task yet)
        self.round_trip = 0.0  # seconds a claim takes, recent-weighted
        self.backlog = False  # the last claim came back full: more work is probably due
        self.last_start = 0.0  # monotonic time a pool thread last started a task
        self.unreleased = []  # claimed-ahead tasks to give back (kept across database errors)
        self.claimed_started = True  # the last claim marked its tasks started
        self.start_floor = 1  # pool threads ask for more tasks marked started below this many
        self.low_water = 0  # pool threads ask for a claim when the buffer is down to this
        self.pending_since = 0.0  # monotonic time the oldest unwritten outcome was collected
        self.nudged = False  # a pool thread has woken the main thread since its last loop turn
        self.stopping = False
        self.stop_deadline = None  # monotonic time at which a graceful stop becomes immediate
        self.parent = ParentLink.from_environ()  # the Django process that started this worker, if any
        self.listener = None
        self.listener_retry_at = 0.0
        self.failures = 0
        self.timers = Timers()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stats = {"done": 0, "failed": 0, "retried": 0}
        self.data_version = None  # the database's change counter when _wait last read it

    # -- lifecycle -------------------------------------------------------

    def run(self):
        """Run the loop; return the process exit code."""
        if self.handle_signals:
            self._install_signal_handlers()
        if self.parent:
            self.parent.watch(self._parent_gone)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="autotask-task")
        logger.info(
            "worker %s started (queues: %s, concurrency %s)",
            self.worker_id,
            ",".join(self.queues or ["all"]),
            self.concurrency,
            extra={"worker_id": self.worker_id},
        )
        try:
            self._loop(pool)
        finally:
            pool.shutdown(wait=True)
            self._flush()
            self._close()
        logger.info("worker %s stopped", self.worker_id, extra={"worker_id": self.worker_id, **self.stats})
        return 0

    def stop(self, immediate=False, grace=None):
        """Stop claiming; with ``immediate``, leave at once (running tasks are recovered later).

        With ``grace``, running tasks get that many seconds before the stop becomes immediate.
        """
        if grace is not None and self.stop_deadline is None:
            self.stop_deadline = time.monotonic() + grace
        if immediate:
            logger.warning("worker %s stopping at once", self.worker_id)
            os._exit(1)
        if not self.stopping:
            logger.info(
                "worker %s stopping: it claims no more tasks and will finish its running tasks "
                "(signal it again to stop at once)",
                self.worker_id,
            )
        self.stopping = True
        self.wake()

    def wake(self):
        try:
            os.write(self.wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full, so a wake-up is pending anyway

    def _install_signal_handlers(self):
        def on_stop(signum, frame):
            self.stop(immediate=self.stopping)

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        # SIGUSR1 is a "tasks were enqueued" nudge from outside (a supervising Django
        # process writes to its socket pair instead; see ParentLink).
        signal.signal(signal.SIGUSR1, lambda signum, frame: self.wake())

    # -- the loop --------------------------------------------------------

    def _loop(self, pool):
        while True:
            self._collect()
            # The link to the Django process: its end, and wake-up bytes that
            # came with a NOTIFY, are read before claiming (_wait reads it too).
            self._check_parent()
            if self.stopping:
                if self._stopping_turn(pool):
                    return
                continue
            self._maintain()
            self._release_if_held()
            wanted = self._claim_size()
            claimed = self._claim(wanted) if wanted else []  # writes the outcomes too
            if not wanted and self._flush_due():
                self._flush()
            self._queue(claimed)
            self._dispatch(pool)
            idle = not self.running and not claimed and self.failures == 0
            if self.drain and idle and self.ops_safe(self._nothing_due):
                return
            if self.title:
                self.title.show(f"running {self.running}" if self.running else "idle")
            if self.running < self.concurrency:
                self._wait(self._idle_timeout())
            else:
                # Every slot is busy (after a full claim, the buffer too): wait for
                # a pool thread to ask for more, rather than hold the GIL while
                # tasks start.
                self._wait(self._busy_timeout())

    def _stopping_turn(self, pool):
        """One loop turn of a graceful stop; return True once nothing runs here any more."""
        self._flush()
        # Claimed ahead, beyond the free slots: back to the queue.  A task
        # claimed for a free slot is shown running and starts anyway, on a
        # pool thread started here when the last one has just ended.
        self._give_back(self._take_ready(keep=self.concurrency))
        self._dispatch(pool)
        if not self.running:
            return True
        if self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
            self.stop(immediate=True)
        self._maintain()  # keep renewing the leases of the tasks still running
        if self.title:
            self.title.show(f"stopping, running {self.running}")
        self._wait(None)
        return False

    def _busy_timeout(self):
        """Seconds to wait with every slot busy: until buffered work needs a look, at most."""
        timeout = None
        if self.ready or self.ahead:
            timeout = HOLD_SECONDS  # claimed-ahead tasks may have to be given back
        if self.pending:
            due = max(0.0, self.pending_since + FLUSH_DELAY - time.monotonic())
            timeout = due if timeout is None else min(timeout, due)
        return timeout

    def _flush_due(self):
        """Return True when the collected outcomes should be written now."""
        if not self.pending:
            return False
        if not self.ready and not self.ahead and not self.runners:
            return True  # nothing else to do: write at once, waiting callers see results sooner
        return len(self.pending) >= FLUSH_BATCH or time.monotonic() - self.pending_since >= FLUSH_DELAY

    def _prefetch(self):
        """Return how many tasks to claim beyond the free slots (0 until tasks prove short)."""
        seconds, limit = self.task_seconds, conf.PREFETCH
        if not limit or seconds is None:
            return 0
        window = min(MAX_PREFETCH_WINDOW, max(PREFETCH_WINDOW, 3 * self.round_trip))
        return min(limit, int(window * self.concurrency / max(seconds, 1e-6)))

    def _claim_size(self):
        """Return how many tasks to claim now: fill the free slots and the buffer, or none."""
        # Claim ahead only into a backlog.  A claim that finds fewer tasks than
        # it asks for reads past every waiting row not due yet: an idle worker
        # asks for its free slots only, which the first due rows satisfy.
        prefetch = self._prefetch() if self.backlog else 0
        self.low_water = prefetch // 2
        if self.running >= self.concurrency and len(self.ready) + len(self.ahead) > self.low_water:
            return 0  # every slot busy and enough claimed ahead: claim later, a bigger batch
        return max(0, self.concurrency + prefetch - self.running)

    def _queue(self, claimed):
        """Take ``claimed`` tasks on, and mark the next claimed-ahead ones started if the pool needs them."""
        if claimed:
            self.running += len(claimed)
            self.active.update(task.id for task in claimed)
            self.last_start = time.monotonic()
            if self.claimed_started:
                self.ready.extend(claimed)
            else:
                self.ahead.extend(claimed)
        if self.ahead:
            self._start_ahead()

    def _start_ahead(self):
        """Mark claimed-ahead tasks started in the database, then hand them to the pool threads."""
        with self.ready_lock:
            idle, queued = self.concurrency - self.executing, len(self.ready)
        self.start_floor = self._start_floor()  # pool threads ask for more below it
        if queued > idle + self.start_floor:
            return  # enough marked to go on with until the next loop turn
        tasks = [self.ahead.popleft() for _ in range(min(len(self.ahead), idle + START_BATCH - queued))]
        marked = self.ops_safe(self.ops.start, self.worker_id, [task.id for task in tasks], timezone.now())
        if marked is False:
            self.ahead.extendleft(reversed(tasks))  # not marked: again at the next loop turn
            return
        marked = set(marked)
        for task in tasks:
            if task.id in marked:
                task.attempts += 1  # the attempt start() counted
                self.ready.append(task)
            else:
                # No longer held here (its lease lapsed and it was recovered): it must not run here.
                logger.warning("task #%s was recovered from this worker before it started; skipped", task.id)
                self.active.discard(task.id)
                self.running -= 1

    def _start_floor(self):
        """Return how many marked tasks to keep queued: those that start during two round trips."""
        seconds = self.task_seconds or 1.0
        return max(1, min(START_BATCH // 4, int(2 * self.round_trip * self.concurrency / max(seconds, 1e-6))))

    def _dispatch(self, pool):
        """Start pool threads for the tasks marked started, up to the free threads."""
        # A runner drains the buffer, so one more per waiting task, up to the free threads.
        for _ in range(min(self.concurrency - self.runners, len(self.ready))):
            self.runners += 1
            pool.submit(self._run_ready)

    def _run_ready(self):
        """Run claimed tasks, oldest first, until none is left (in a pool thread)."""
        try:
            while True:
                with self.ready_lock:
                    if not self.ready:
                        return
                    task = self.ready.popleft()
                    self.executing += 1
                self.last_start = time.monotonic()
                try:
                    self._execute(task)
                finally:
                    with self.ready_lock:
                        self.executing -= 1
                if not self.nudged and (
                    len(self.ready) + len(self.ahead) <= self.low_water
                    or (self.ahead and len(self.ready) <= self.start_floor)
                    or self.outcomes.qsize() >= FLUSH_BATCH
                ):
                    # Time to claim more, or to write a full batch of outcomes.  Once
                    # per loop turn of the main thread: each wake-up costs both
                    # threads a hand-over of the GIL.
                    self.nudged = True
                    self.wake()
        finally:
            self.outcomes.put(RUNNER_DONE)
            self.wake()

    def _take_ready(self, keep=0):
        """Remove and return the claimed tasks no pool thread has started.

        With ``keep``, leave the oldest of them for the slots free of ``keep``
        (counting the tasks running now): those start, the newest come back.
        Those not marked started come back first.
        """
        taken = [self.ahead.pop() for _ in range(len(self.ahead))]
        with self.ready_lock:
            left = max(0, keep - self.executing)
            return taken + [self.ready.pop() for _ in range(max(0, len(self.ready) - left))]

    def _release_if_held(self):
        """Give claimed-ahead tasks back when no slot has started a task for HOLD_SECONDS."""
        waited = time.monotonic() - self.last_start
        if (self.ready or self.ahead) and waited > HOLD_SECONDS:
            # A task turned out long: count it so, or the next claim would
            # take another batch to hold.
            self._timed(waited)
            self._give_back(self._take_ready())
        elif self.unreleased:
            self._give_back([])  # an earlier give-back met a database error: again

    def _give_back(self, tasks):
        """Return claimed-ahead ``tasks`` to the queue for any worker (retried after errors)."""
        self.unreleased.extend(tasks)
        if not self.unreleased:
            return
        if self.ops_safe(self.ops.release, self.worker_id, self.unreleased) is not False:
            for task in self.unreleased:
                self.active.discard(task.id)
            self.running -= len(self.unreleased)
            self.unreleased = []

    def _execute(self, task):
        started = time.monotonic()
        try:
            outcome = execute(task, self.worker_id)
        except BaseException:
            logger.exception("executing task %s crashed the executor", task.id)
            outcome = None
        self._timed(time.monotonic() - started)
        self.active.discard(task.id)
        self.outcomes.put(outcome)

    def _timed(self, seconds):
        """Track how long tasks take: up at once after a long one, down gradually."""
        previous = self.task_seconds
        if previous is None or seconds > previous:
            self.task_seconds = seconds
        else:
            self.task_seconds = 0.9 * previous + 0.1 * seconds

    def _claim(self, free):
        """Claim up to ``free`` tasks, writing the collected outcomes in the same round trip."""
        now = timezone.now()
        written = self.pending
        clock = time.monotonic()
        # Tasks for the idle slots start at once: claimed as started.  A claim
        # beyond them only claims; _start_ahead marks them as they are needed.
        self.claimed_started = started = free <= self.concurrency - self.running and not self.ahead
        lease_until = now + self.lease
        claimed = self.ops_safe(
            self.ops.finish_and_claim, self.worker_id, written, self.queues, free, lease_until, now, started
        )
        if claimed is False:
            return []  # the outcomes stay pending and go with the next write
        self.round_trip = 0.8 * self.round_trip + 0.2 * (time.monotonic() - clock)
        self.backlog = len(claimed) == free
        self._written(written)
        return claimed

    def _flush(self):
        """Write the outcomes of finished tasks in one batch."""
        self._collect()
        written = self.pending
        if written and self.ops_safe(self.ops.finish, self.worker_id, written) is not False:
            self._written(written)

    def _written(self, written):
        """Forget ``written`` outcomes (now stored) and do what follows storing them."""
        self.pending = []  # ``written`` is all of it: nothing is collected while it is written
        scheduled = [outcome for outcome in written if outcome.schedule_id]
        if scheduled:
            self.ops_safe(scheduling.record_outcomes, self.using, scheduled)

    def _collect(self):
        """Take what the pool threads reported: outcomes to write, and stopped runners."""
        self.nudged = False
        while True:
            try:
                outcome = self.outcomes.get_nowait()
            except queue_module.Empty:
                break
            if outcome is RUNNER_DONE:
                self.runners -= 1
                continue
            self.running -= 1
            if outcome is not None:
                if not self.pending:
                    self.pending_since = time.monotonic()
                self.pending.append(outcome)
                self._count(outcome)

    def _count(self, outcome):
        key = "done" if outcome.status == DONE else "retried" if outcome.status == WAITING else "failed"
        self.stats[key] += 1

    def _nothing_due(self):
        due = self.ops.next_due(self.queues)
        return due is None or due > timezone.now()

    def _idle_timeout(self):
        """Seconds to wait when there is free capacity: until the next due task at most."""
        timeout = min(self.idle_time, self.timers.seconds_to_next())
        due = self.ops_safe(self.ops.next_due, self.queues)
        if due:
            timeout = min(timeout, max(0.0, (due - timezone.now()).total_seconds()))
        if self.drain:
            timeout = min(timeout, 0.5)
        return timeout

    def _wait(self, timeout):
        """Sleep until a task finishes, a notification or signal arrives, or ``timeout``."""
        if timeout is None:
            timeout = self.timers.seconds_to_next()
        listener = self._listener()
        if self.stop_deadline is not None:
            timeout = min(timeout, max(0.0, self.stop_deadline - time.monotonic()))
        fds = [self.wake_r, *([listener.fileno()] if listener else [])]
        if self.parent:
            fds.append(self.parent)  # end of file: the Django process that started this worker ended
        deadline = time.monotonic() + max(0.0, timeout)
        # Written since the last look (perhaps before this turn's claim, perhaps after);
        # watched only while a slot is free to run what another process enqueued.
        watch = not listener and self.running < self.concurrency and not self.stopping
        changed = self._database_changed() if watch else None
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            step = remaining if changed is None else min(remaining, CHANGE_POLL)
            try:
                readable, _, _ = select.select(fds, [], [], step)
            except InterruptedError:
                readable = []
            if readable or step >= remaining:
                break
            if changed is False:
                changed = self._database_changed()
            if changed is None:
                continue  # cannot tell any more: wait out the timeout
            if changed and self._due_now():
                break
            changed = False
        if self.wake_r in readable:
            try:
                while os.read(self.wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if self.parent and self.parent in readable:
            self._check_parent()
        if listener and listener.fileno() in readable:
            try:
                listener.drain()
            except Exception:
                logger.warning("LISTEN connection lost; polling until it is back", exc_info=True)
                self._drop_listener()

    def _database_changed(self):
        """True when another connection wrote since the last look; None when the database cannot tell."""
        try:
            version = self.ops.data_version()
        except DatabaseError:
            # Wait out the timeout (it may be a back-off); the next claim meets the error.
            logger.debug("cannot read the database's change counter", exc_info=True)
            return None
        if version is None:
            return None
        changed = version != self.data_version
        self.data_version = version
        return changed

    def _due_now(self):
        """After a change: is a task due now? (One probe of the due index, no write.)"""
        try:
            due = self.ops.next_due(self.queues)
        except DatabaseError:
            return True  # the next claim meets the error and handles it
        return due is not None and due <= timezone.now()

    def _listener(self):
        if not self.listen or not self.ops.supports_listen or self.listener:
            return self.listener
        if time.monotonic() < self.listener_retry_at:
            return None
        try:
            self.listener = self.ops.listener()
        except Exception:
            logger.warning("cannot LISTEN for tasks now; retrying later", exc_info=True)
            self.listener_retry_at = time.monotonic() + MAX_BACKOFF
        return self.listener

    def _drop_listener(self):
        if self.listener:
            self.listener.close()
        self.listener = None
        self.listener_retry_at = time.monotonic() + 1.0

    # -- database access -------------------------------------------------

    def ops_safe(self, func, *args):
        """Call ``func``; on a database error log, reconnect, back off and return False."""
        try:
            result = func(*args)
        except DatabaseError as exc:
            self.failures += 1
            self.ops.reset_connection()
            if self.failures == 1:
                # A dropped connection costs one immediate retry, not a pause.
                logger.warning("database error (%s); reconnecting", exc)
                return self.ops_safe(func, *args)
            delay = min(MAX_BACKOFF, 0.1 * 2 ** (self.failures - 2))
            hint = hint_for(exc)
            logger.error("database error (%s)%s; retrying in %.1fs", exc, hint, delay)
            self._wait(delay)
            return False
        self.failures = 0
        return result

    # -- periodic duties -------------------------------------------------

    def _maintain(self):
        for duty in self.timers.due(time.monotonic()):
            try:
                self.ops_safe(self._run_duty, duty)
            except Exception:
                logger.exception("worker duty %r failed; it runs again at its next interval", duty)

    def _run_duty(self, duty):
        # The clock is read as the duty runs, not once for the turn: an earlier
        # duty, or a first try of this one, may have waited out a database outage.
        getattr(self, f"_duty_{duty}")(timezone.now())

    def _duty_heartbeat(self, now):
        heartbeat(self, now)
        if self.running:
            self.ops.renew_leases(self.worker_id, now + self.lease, list(self.active))

    def _duty_recover(self, now):
        _, finished = recover(self.ops)  # each batch reads the clock anew
        if not finished:
            # The time budget ran out with leases still lapsed: the next pass
            # comes at the next loop turn, not half a lease later.
            self.timers.set_next("recover", time.monotonic())

    def _duty_prune(self, now):
        prune(self.ops, now)

    def _duty_schedule(self, now):
        wait = scheduling.tick(self.using, now)
        if wait is not None:
            self.timers.set_next("schedule", time.monotonic() + wait)

    def _check_parent(self):
        """Read the link to the Django process that started this worker; stop once it has ended."""
        if self.parent and not self.parent.receive():
            self.parent.close()
            self.parent = None
            self._parent_gone()

    def _parent_gone(self):
        """Stop because the Django process this worker was started beside has ended."""
        if self.stop_deadline is None:
            logger.warning(
                "the Django process of worker %s has ended; stopping (running tasks get %ss)",
                self.worker_id,
                conf.ORPHAN_GRACE_SECONDS,
            )
        self.stop(grace=conf.ORPHAN_GRACE_SECONDS)

    def _close(self):
        if self.listener:
            self.listener.close()
        if self.parent:
            self.parent.close()
        try:
            forget_worker(self)
        except DatabaseError:
            logger.debug("could not remove the worker row", exc_info=True)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)


def run_worker(**kwargs):
    """Build a :class:`Worker` and run it; return its exit code."""
    return Worker(**kwargs).run()


__all__ = ["Worker", "run_worker"]
