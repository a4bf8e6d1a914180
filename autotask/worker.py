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
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from . import maintenance
from .conf import conf
from .db import get_ops
from .executor import execute

logger = logging.getLogger("autotask")

MAX_BACKOFF = 5.0  # seconds: the longest pause between attempts to reach the database


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
    ):
        self.queues = list(queues or conf.QUEUES or []) or None
        self.concurrency = concurrency or conf.CONCURRENCY
        self.drain = drain
        self.idle_time = conf.HANDLE_TASK_IDLE_TIME if idle_time is None else idle_time
        self.listen = conf.LISTEN if listen is None else listen
        self.using = using or conf.DATABASE
        self.worker_id = worker_id or new_worker_id()
        self.handle_signals = handle_signals
        self.lease = timedelta(seconds=conf.LEASE_SECONDS)
        self.ops = get_ops(self.using)
        self.outcomes = queue_module.SimpleQueue()  # filled by pool threads
        self.pending = []  # outcomes not yet written (kept across database errors)
        self.running = 0
        self.stopping = False
        self.listener = None
        self.listener_retry_at = 0.0
        self.failures = 0
        self.timers = maintenance.Timers()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stats = {"done": 0, "failed": 0, "retried": 0}

    # -- lifecycle -------------------------------------------------------

    def run(self):
        """Run the loop; return the process exit code."""
        if self.handle_signals:
            self._install_signal_handlers()
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

    def stop(self, immediate=False):
        """Stop claiming; with ``immediate``, leave at once (running tasks are recovered later)."""
        if immediate:
            logger.warning("worker %s stopping at once", self.worker_id)
            os._exit(1)
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
        # SIGUSR1 is the local "tasks were enqueued" nudge from a parent process.
        signal.signal(signal.SIGUSR1, lambda signum, frame: self.wake())

    # -- the loop --------------------------------------------------------

    def _loop(self, pool):
        while True:
            self._flush()
            if self.stopping:
                if not self.running:
                    return
                self._wait(None)
                continue
            self._maintain()
            free = self.concurrency - self.running
            claimed = self._claim(free) if free > 0 else []
            for task in claimed:
                self.running += 1
                pool.submit(self._execute, task)
            if len(claimed) == free and free:
                continue  # there may be more due work; claim again once slots free up
            idle = not self.running and not claimed and self.failures == 0
            if self.drain and idle and self.ops_safe(self._nothing_due):
                return
            self._wait(self._idle_timeout() if self.running < self.concurrency else None)

    def _execute(self, task):
        try:
            outcome = execute(task, self.worker_id)
        except BaseException:
            logger.exception("executing task %s crashed the executor", task.id)
            outcome = None
        self.outcomes.put(outcome)
        self.wake()

    def _claim(self, free):
        now = timezone.now()
        claimed = self.ops_safe(self.ops.claim, self.worker_id, self.queues, free, now + self.lease, now)
        return claimed or []

    def _flush(self):
        """Write the outcomes of finished tasks in one batch."""
        while True:
            try:
                outcome = self.outcomes.get_nowait()
            except queue_module.Empty:
                break
            self.running -= 1
            if outcome is not None:
                self.pending.append(outcome)
                self._count(outcome)
        if self.pending and self.ops_safe(self.ops.finish, self.worker_id, self.pending) is not False:
            scheduled = [outcome for outcome in self.pending if outcome.schedule_id]
            self.pending = []
            if scheduled:
                from . import scheduler

                self.ops_safe(scheduler.record_outcomes, self.using, scheduled)

    def _count(self, outcome):
        from .task import DONE, WAITING

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
        fds = [self.wake_r] + ([listener.fileno()] if listener else [])
        try:
            readable, _, _ = select.select(fds, [], [], max(0.0, timeout))
        except InterruptedError:
            readable = []
        if self.wake_r in readable:
            try:
                while os.read(self.wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if listener and listener.fileno() in readable:
            try:
                listener.drain()
            except Exception:
                logger.warning("LISTEN connection lost; polling until it is back", exc_info=True)
                self._drop_listener()

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
            hint = maintenance.hint_for(exc)
            logger.error("database error (%s)%s; retrying in %.1fs", exc, hint, delay)
            self._wait(delay)
            return False
        self.failures = 0
        return result

    # -- periodic duties -------------------------------------------------

    def _maintain(self):
        now = timezone.now()
        for duty in self.timers.due(time.monotonic()):
            self.ops_safe(getattr(self, f"_duty_{duty}"), now)

    def _duty_heartbeat(self, now):
        maintenance.heartbeat(self, now)
        if self.running:
            self.ops.renew_leases(self.worker_id, now + self.lease)

    def _duty_recover(self, now):
        maintenance.recover(self.ops, now)

    def _duty_prune(self, now):
        maintenance.prune(self.ops, now)

    def _duty_schedule(self, now):
        from . import scheduler

        wait = scheduler.tick(self.using, now)
        if wait is not None:
            self.timers.set_next("schedule", time.monotonic() + wait)

    def _close(self):
        if self.listener:
            self.listener.close()
        try:
            maintenance.forget_worker(self)
        except DatabaseError:
            logger.debug("could not remove the worker row", exc_info=True)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)


def run_worker(**kwargs):
    """Build a :class:`Worker` and run it; return its exit code."""
    return Worker(**kwargs).run()


__all__ = ["Worker", "run_worker"]
