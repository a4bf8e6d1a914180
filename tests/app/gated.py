"""A task that runs until the test lets it finish (tests of how workers share work)."""

import os
import time

from autotask.tasks import delayed_task

GATE_SECONDS = 60  # the longest a gated task waits for its file: a failing test never hangs a worker
POLL_SECONDS = 0.01


@delayed_task
def gated(path):
    """Wait until the file ``path`` exists (at most GATE_SECONDS); return whether it does."""
    deadline = time.monotonic() + GATE_SECONDS
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return os.path.exists(path)
