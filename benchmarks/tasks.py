"""The task functions the benchmarks enqueue and the worker processes import."""

import socket
import time

from django.db import connection

from autotask.tasks import delayed_task

_udp = None
# Seconds the big benchmark's churn tasks are kept once done: the pruning then
# deletes them while the load goes on.
CHURN_TTL = 10.0


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


@delayed_task(ttl=CHURN_TTL)
def churn_noop():
    """Do nothing, kept only CHURN_TTL seconds once done: the big benchmark's sustained load."""


@delayed_task
def gather(results):
    """A group's callback: receives the group's results (the workflows benchmark)."""
    return len(results)


@delayed_task
def progress_loop(n, report):
    """Run ``n`` iterations of a small unit of work, calling set_progress in each if ``report``.

    Returns the loop's own seconds (the workflows benchmark compares the two).
    """
    import hashlib

    from autotask import current_task

    task = current_task()
    payload = b"x" * 64
    started = time.perf_counter()
    if report:
        for done in range(n):
            hashlib.sha256(payload).digest()
            task.set_progress(done + 1, n)
    else:
        for _done in range(n):
            hashlib.sha256(payload).digest()
    return time.perf_counter() - started


@delayed_task
def progress_loop_empty(n, report):
    """The same loop with no work in it: the bare cost of set_progress against an empty iteration."""
    from autotask import current_task

    task = current_task()
    started = time.perf_counter()
    if report:
        for done in range(n):
            task.set_progress(done + 1, n)
    else:
        for _done in range(n):
            pass
    return time.perf_counter() - started


@delayed_task
def until_stopped():
    """Run until asked to stop (the stop-latency benchmark): checks should_stop, or is interrupted."""
    from autotask import current_task

    task = current_task()
    while True:
        task.raise_if_stopped()
        time.sleep(0.002)


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
