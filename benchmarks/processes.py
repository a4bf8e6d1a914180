"""Process mode against thread mode, in the same run: throughput, pickup, child start and recycle, stops."""

import time

from benchmarks import harness
from benchmarks.targets import AutotaskTarget

START_SAMPLES = 10  # children started (each waited for) for the start-cost figure
RECYCLE_TASKS = 40  # tasks run with a recycle after each, and as many without
STOP_SAMPLES = 30  # stops timed per mode


def run(suite):
    count = suite.options.small_tasks
    threads = {n: AutotaskTarget(["--concurrency", str(n)]) for n in (2, 4)}
    children = {n: AutotaskTarget(["--processes", str(n)]) for n in (2, 4)}
    for n in (2, 4):
        ours = suite.record(f"processes_{n}_throughput", suite.throughput(children[n], 1, count))
        ref = suite.record(f"threads_{n}_throughput", suite.throughput(threads[n], 1, count))
        suite.add(
            f"no-op throughput, 1 worker, {n} child processes, {count:,} tasks",
            "tasks/s",
            harness.median(ours),
            [(f"thread mode, {n} threads", harness.median(ref))],
        )
    samples = suite.options.pickup_samples
    ours = suite.record("processes_pickup", suite.pickup(children[2], samples))
    ref = suite.record("threads_pickup", suite.pickup(threads[2], samples))
    for name, fraction in (("p50", 0.5), ("p95", 0.95)):
        suite.add(
            f"pickup latency {name}, idle worker, 2 child processes",
            "ms",
            harness.percentile(ours, fraction) * 1000,
            [("thread mode, 2 threads", harness.percentile(ref, fraction) * 1000)],
            higher_is_better=False,
        )
    start = suite.record("child_start", child_starts())
    plain, recycled = recycle_costs()
    suite.record("child_task_plain", plain)
    suite.record("child_task_recycled", recycled)
    suite.add(
        "child process start (fork server, Django set up)",
        "ms",
        harness.median(start) * 1000,
        higher_is_better=False,
    )
    suite.add(
        "task in a child, recycled after it",
        "ms",
        harness.median(recycled) * 1000,
        [("task in a child, kept", harness.median(plain) * 1000)],
        higher_is_better=False,
        note="the difference is the cost of a recycle on the task's path",
    )
    for label, target in (("2 child processes", children[2]), ("thread mode, should_stop", threads[2])):
        latencies = suite.record(f"stop_{label}", stop_latencies(target))
        for name, fraction in (("p50", 0.5), ("p95", 0.95)):
            suite.add(
                f"stop latency {name} (request to CANCELLED), {label}",
                "ms",
                harness.percentile(latencies, fraction) * 1000,
                higher_is_better=False,
            )


def _pool(**options):
    from autotask.worker.processes import ChildPool

    return ChildPool(1, "bench:0:0", everything=True, **options)


def child_starts():
    """Seconds from asking for a child to its "ready" (Django set up in the fork server)."""
    pool = _pool()
    first = pool._start_child()  # the fork server starts (once per worker): not counted
    first.wait_ready()
    first.retire()
    seconds = []
    for _ in range(START_SAMPLES):
        clock = time.perf_counter()
        child = pool._start_child()
        child.wait_ready()
        seconds.append(time.perf_counter() - clock)
        child.retire()
        child.gone(wait=2.0)
    pool.close()
    return seconds


def _noop_task(pk):
    from autotask import serialization
    from autotask.db.base import ClaimedTask

    return ClaimedTask(
        id=pk,
        function="benchmarks.tasks.noop",
        kind="delayed",
        queue="default",
        priority=0,
        args=serialization.encode_call((), {}),
        attempts=1,
        max_attempts=1,
        ttl=300.0,
        options={},
        history=[],
        schedule_id=None,
    )


def recycle_costs():
    """Seconds per no-op task in a child: kept, and replaced after each task (AUTOTASK_CHILD_MAX_TASKS=1)."""
    from autotask.context import CurrentTask

    result = []
    for options in ({}, {"max_tasks": 1}):
        pool = _pool(**options)
        pool.start()
        seconds = []
        for pk in range(RECYCLE_TASKS):
            task = _noop_task(pk + 1)
            clock = time.perf_counter()
            outcome = pool.run(task, CurrentTask.of(task))
            seconds.append(time.perf_counter() - clock)
            if outcome.status != 3:
                raise RuntimeError(f"the no-op task failed in its child: {outcome.error_message}")
        pool.close()
        result.append(seconds[1:])
    return result


def stop_latencies(target):
    """Seconds from DelayedTask.stop() to the row read CANCELLED, one running task at a time."""
    from autotask.models import TaskQueue
    from autotask.task import CANCELLED, RUNNING
    from benchmarks.tasks import until_stopped

    seconds = []
    target.reset()
    with harness.Processes() as procs:
        target.start_workers(procs, 1)
        for _ in range(STOP_SAMPLES):
            handle = until_stopped()
            rows = TaskQueue.objects.filter(pk=handle.pk)
            harness.wait_until(
                lambda rows=rows: rows.filter(status=RUNNING, started_at__isnull=False).exists(),
                what="the task to start",
            )
            time.sleep(0.05)  # running, inside its function
            clock = time.perf_counter()
            if not handle.stop():
                raise RuntimeError("the running task could not be asked to stop")
            harness.wait_until(
                lambda rows=rows: rows.filter(status=CANCELLED).exists(), interval=0.002, what="the stop"
            )
            seconds.append(time.perf_counter() - clock)
    target.reset()
    return seconds
