"""The task functions the benchmarks enqueue and the worker processes import."""

import socket
import time

from django.db import connection

from autotask.tasks import delayed_task

_udp = None


@delayed_task
def noop():
    """Do nothing: the queue's own cost is what is measured."""


@delayed_task
def stamp(port):
    """Tell the benchmark (UDP on localhost:``port``) the instant this task started."""
    started = time.time()
    global _udp
    if _udp is None:
        _udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _udp.sendto(repr(started).encode(), ("127.0.0.1", port))
    return started


@delayed_task
def mark(key):
    """Record one execution of ``key`` (duplicates show up as repeated keys)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_mark (key) VALUES (%s)", [key])


@delayed_task(unique=True, unique_key="{key}")
def unique_noop(key):
    """Do nothing, holding a unique key while waiting or running (the unique benchmark)."""


@delayed_task
def until_stopped():
    """Run until asked to stop (the stop-latency benchmark): checks should_stop, or is interrupted."""
    from autotask import current_task

    task = current_task()
    while True:
        task.raise_if_stopped()
        time.sleep(0.002)
