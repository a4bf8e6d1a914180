"""Stop requests: from the database to the attempts running in this worker."""

import threading
import time

from ..context import CurrentTask

# Seconds between looks for stop requests while this worker holds tasks: without
# a notification (SQLite, MariaDB, no LISTEN), and with one (a lost one is found then).
POLL = 0.5
POLL_LISTENING = 2.0


class Stops:
    """The attempts running here, by task id, and the stops asked for them.

    Pool threads call :meth:`begin` and :meth:`end` around each attempt;
    the main thread calls :meth:`request` with the ids the database says were
    asked to stop.  ``attempts`` and ``requested`` are guarded by ``lock``;
    ``next_check`` is the main thread's.  A stop asked for a task not running
    yet (claimed ahead) waits in ``requested``: that attempt ends CANCELLED
    before its function is called.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = {}  # task id -> the CurrentTask of its running attempt
        self.requested = set()  # task ids asked to stop, held here
        self.next_check = 0.0  # monotonic time of the next look in the database

    # -- pool threads ------------------------------------------------------

    def begin(self, task, worker_id):
        """The CurrentTask of ``task``'s attempt, known here until :meth:`end`."""
        current = CurrentTask.of(task, worker_id)
        with self.lock:
            self.attempts[task.id] = current
            asked = task.id in self.requested
        if asked:
            current.request_stop()
        return current

    def end(self, task_id):
        with self.lock:
            self.attempts.pop(task_id, None)
            self.requested.discard(task_id)

    # -- the main thread ---------------------------------------------------

    def seconds_to_check(self):
        return max(0.0, self.next_check - time.monotonic())

    def due(self, notified):
        return notified or time.monotonic() >= self.next_check

    def checked(self, listening):
        self.next_check = time.monotonic() + (POLL_LISTENING if listening else POLL)

    def request(self, ids, held):
        """Stop the attempts of ``ids`` (asked in the database); forget requests no longer ``held`` here."""
        with self.lock:
            self.requested.intersection_update(held)
            fresh = set(ids) - self.requested
            self.requested.update(fresh)
            attempts = [self.attempts[task_id] for task_id in fresh if task_id in self.attempts]
        for current in attempts:
            current.request_stop()
        return fresh
