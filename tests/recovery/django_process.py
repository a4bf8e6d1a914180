"""A Django process that runs no management command: ``django.setup()`` starts a worker beside it.

The tests drive it through stdin, one command per line, and read its answers on stdout:

    record KEY [KEY ...]      enqueue tests.app.tasks.record(KEY) for each key (one commit each)
    pid                       print "worker PID" once the supervised worker has been started
    exit                      leave normally (atexit hands the worker its graceful stop)
"""

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from autotask import supervisor  # noqa: E402 - needs the settings
from tests.app import tasks  # noqa: E402


def worker_pid(timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = supervisor.current()
        if current is not None and current.child is not None and current.child.poll() is None:
            return current.child.pid
        time.sleep(0.02)
    return None


def main():
    print("ready", os.getpid(), "with a worker" if supervisor.current() else "without a worker", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "record":
            for key in args:
                tasks.record(key)
            print("enqueued", len(args), flush=True)
        elif command == "pid":
            print("worker", worker_pid(), flush=True)
        elif command == "exit":
            return


if __name__ == "__main__":
    main()
