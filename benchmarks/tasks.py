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


KEYS = 1000  # distinct concurrency keys of the limits benchmark
HOT_LIMIT = 8  # the limit of the hot key (2 workers x 8 threads could run 16)


@delayed_task(concurrency_limit=1, concurrency_key="k{key}")
def keyed_noop(key):
    """Do nothing, holding a slot of its concurrency key (limit 1) while admitted or running."""


@delayed_task(concurrency_limit=HOT_LIMIT, concurrency_key="hot")
def hot_span(n):
    """Record when this run began and ended (bench_span); all share one key limited to HOT_LIMIT."""
    begin = time.time()
    time.sleep(0.001)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_span (b, e) VALUES (%s, %s)", [begin, time.time()])
