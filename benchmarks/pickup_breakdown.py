"""``python -m benchmarks.pickup_breakdown``: where an idle worker's pickup time goes (PostgreSQL).

The pickup benchmark measures one figure, enqueue commit to task start.  This
tool cuts it into the worker's stages: one worker process, its loop's stages
timestamped (wall clock) by wrappers put around them before it starts, and
probes sent as the pickup benchmark sends them.  Each line is the median
time from the previous stage to this one:

* ``woken``: the worker's wait returned (the NOTIFY arrived);
* ``claim called``: the loop turn reached the claim (maintenance, sizing);
* ``statement sent``: the claim statement was built and a cursor opened;
* ``claim returned``: the claim's round trip (execution and commit included)
  and the rows fetched;
* ``tasks built``: the claimed rows decoded into tasks;
* ``handed over``: the pool was given the tasks;
* ``thread started``: a pool thread took the task (a thread switch);
* ``task started``: the executor called the task function.

The plain LISTEN/NOTIFY reference of the pickup benchmark does only the
round trip of ``claim returned``, on a narrower table and statement.
The wrappers cost a few microseconds each: the total is a little above the
pickup benchmark's.

Run as ``python -m benchmarks.pickup_breakdown [--samples 200]``; it uses
the benchmark database (BENCH_PG_NAME), dropped and created afresh.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

STAGES = (
    ("woken", "woke"),
    ("claim called", "claim0"),
    ("statement sent", "sql0"),
    ("claim returned", "sql1"),
    ("tasks built", "claim1"),
    ("handed over", "dispatch"),
    ("thread started", "exec"),
)


def worker(log_path):
    """The worker process: wrap the loop's stages, then run run_autotask."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()
    from autotask.db import base
    from autotask.worker import pool, wakeups

    log = open(log_path, "w", buffering=1)  # noqa: SIM115 - for the life of the process

    def mark(name):
        log.write(f"{name} {time.time():.6f}\n")

    def around(owner, attribute, before=None, after=None):
        original = getattr(owner, attribute)

        def wrapper(*args, **kwargs):
            if before:
                mark(before)
            result = original(*args, **kwargs)
            if after:
                mark(after)
            return result

        setattr(owner, attribute, wrapper)

    around(wakeups.Wakeups, "wait", after="woke")
    around(base.Driver, "claim", before="claim0", after="claim1")
    around(base.Driver, "_run_claim", before="sql0", after="sql1")
    around(pool.TaskPool, "dispatch", before="dispatch")
    around(pool, "execute", before="exec")
    from django.core.management import call_command

    call_command("run_autotask")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pickup_breakdown")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the worker process's log file
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    from benchmarks import harness
    from benchmarks.suite import PICKUP_GAP_SECONDS, PICKUP_WARMUP
    from benchmarks.targets import AutotaskTarget

    harness.configure("postgresql")
    target = AutotaskTarget()
    target.reset()
    receiver = harness.StampReceiver()
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        with harness.Processes() as procs:
            procs.start([sys.executable, "-m", "benchmarks.pickup_breakdown", "--worker", log.name])
            harness.wait_ready(procs, lambda: harness.listeners('LISTEN "autotask_taskqueue"') >= 1)
            probes = []
            for index in range(PICKUP_WARMUP + args.samples):
                time.sleep(random.uniform(*PICKUP_GAP_SECONDS))
                target.enqueue_stamp(receiver.port)
                committed = time.time()
                started = receiver.receive()
                if index >= PICKUP_WARMUP:
                    probes.append((committed, started))
        receiver.close()
        events = [(name, float(at)) for name, at in (line.split() for line in log.read().splitlines())]
    print(report(probes, events))
    return 0


def report(probes, events):
    """The median time of each stage over ``probes`` ((commit, task start) pairs)."""
    spans = {label: [] for label, _ in STAGES}
    spans["task started"], spans["total"] = [], []
    events.sort(key=lambda event: event[1])
    for committed, started in probes:
        first = {}
        for name, at in events:
            if committed - 0.005 <= at <= started:  # the wait may return just before the commit is seen
                first.setdefault(name, at)
        previous = committed
        for label, name in STAGES:
            if name in first:
                spans[label].append(first[name] - previous)
                previous = first[name]
        spans["task started"].append(started - previous)
        spans["total"].append(started - committed)
    lines = [f"pickup, {len(probes)} probes, median microseconds from the previous stage (load {_load()})"]
    for label, values in spans.items():
        if values:
            lines.append(f"  {label:16s} {statistics.median(values) * 1e6:8.0f}")
    return "\n".join(lines)


def _load():
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
