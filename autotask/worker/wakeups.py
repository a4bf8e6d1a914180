"""What wakes a waiting worker: its pipe, LISTEN, the database's change counter."""

import logging
import os
import select
import time

from django.db import DatabaseError
from django.utils import timezone

from ..db import STOP_NOTICE

logger = logging.getLogger("autotask")

MAX_BACKOFF = 5.0  # seconds: the longest pause between attempts to reach the database
# Without LISTEN, a waiting worker whose database tells when another connection
# wrote (SQLite's data_version) asks it this often, and looks for a due task
# when it changed: tasks enqueued by other processes start within about this
# long, not the idle time.
CHANGE_POLL = 0.05


class Wakeups:
    """The main thread's sleep, and what ends it.

    Any thread, and signal handlers, may call :meth:`wake` (a byte into a
    non-blocking pipe).  Pool threads call :meth:`nudge` at most once per loop
    turn of the main thread, which clears ``nudged`` as it collects (a plain
    flag: a lost race costs one wake-up more, or one a turn later).
    Everything else (the LISTEN connection and its retry time, the last
    change counter read) is the main thread's, which alone calls :meth:`wait`.
    """

    def __init__(self, ops, queues, listen):
        self.ops = ops
        self.queues = queues
        self.listen = listen
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.nudged = False  # a pool thread has woken the main thread since its last loop turn
        self.listener = None
        self.listener_retry_at = 0.0
        self.data_version = None  # the database's change counter when wait() last read it
        self.stop_notified = False  # a "task asked to stop" notification came (the main thread clears it)

    def wake(self):
        try:
            os.write(self.write_fd, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full, so a wake-up is pending anyway

    def nudge(self):
        """Wake the main thread to claim more or to write outcomes (from a pool thread).

        Once per loop turn of the main thread: each wake-up costs both threads
        a hand-over of the GIL.
        """
        self.nudged = True
        self.wake()

    def wait(self, timeout, fds, watch):
        """Sleep until woken, a notification arrives, one of ``fds`` is readable, or ``timeout``.

        With ``watch``, and no LISTEN, a change in the database with a task due
        ends the sleep too.  Return the readable ones of ``fds``.
        """
        listener = self.current_listener()
        fds = [self.read_fd, *([listener.fileno()] if listener else []), *fds]
        deadline = time.monotonic() + max(0.0, timeout)
        # Written since the last look (perhaps before this turn's claim, perhaps after);
        # watched only while a slot is free to run what another process enqueued.
        changed = self._database_changed() if watch and not listener else None
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
        if self.read_fd in readable:
            try:
                while os.read(self.read_fd, 4096):
                    pass
            except BlockingIOError:
                pass
        if listener and listener.fileno() in readable:
            try:
                if STOP_NOTICE in listener.drain():
                    self.stop_notified = True
            except Exception:
                logger.warning("LISTEN connection lost; polling until it is back", exc_info=True)
                self.drop_listener()
        return readable

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

    def current_listener(self):
        """The LISTEN connection, opened (or retried) when due; None without one."""
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

    def drop_listener(self):
        if self.listener:
            self.listener.close()
        self.listener = None
        self.listener_retry_at = time.monotonic() + 1.0

    def close(self):
        if self.listener:
            self.listener.close()
        for fd in (self.read_fd, self.write_fd):
            os.close(fd)
