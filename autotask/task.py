"""Task status constants (the import path the original documentation names)."""

from datetime import timedelta

# Status values are stored as small integers; the first four are the original's.
WAITING = 1  # stored, waiting for its scheduled time and a free worker
RUNNING = 2  # claimed by a worker that holds a lease on it
DONE = 3  # finished; the result is kept until the ttl lapses
ERROR = 4  # failed with no retries left; the error is kept until the ttl lapses
CANCELLED = 5  # cancelled before it started; never runs
# A task with a concurrency limit, waiting for a slot of its key: no claim takes
# it until an admission (autotask.db.flow) makes it WAITING.
HELD = 6

STATUS_NAMES = {
    WAITING: "waiting",
    RUNNING: "running",
    DONE: "done",
    ERROR: "error",
    CANCELLED: "cancelled",
    HELD: "held",
}
FINISHED = (DONE, ERROR, CANCELLED)

# The cancel policy: a cancelled task is CANCELLED, finished now, and stays
# visible this long before pruning deletes it.
CANCELLED_KEPT = timedelta(days=1)

__all__ = [
    "CANCELLED",
    "CANCELLED_KEPT",
    "DONE",
    "ERROR",
    "FINISHED",
    "HELD",
    "RUNNING",
    "STATUS_NAMES",
    "WAITING",
]
