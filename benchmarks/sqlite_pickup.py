"""SQLite: how long a task enqueued by another process waits for an idle worker, and what idling costs.

    python -m benchmarks.sqlite_pickup [--samples 100] [--spread 10] [--idle-cpu 60]

One ``run_autotask`` worker (default settings: AUTOTASK_HANDLE_TASK_IDLE_TIME
10 s) idles on an SQLite file in WAL mode. This process, another process as a
management command or a cron script would be, enqueues one task at a time at a
random moment (uniform over ``--spread`` seconds after the previous task
started, so every phase of the worker's idle wait is sampled) and the task
reports the instant it started. Pickup = start - the enqueue's commit.

Then the worker idles ``--idle-cpu`` seconds with nothing to do: the CPU time
it used meanwhile (user + system, from /proc) is its idle cost.
"""

import argparse
import os
import random
import time
from pathlib import Path

from benchmarks import harness


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the enqueue instants spread over")
    parser.add_argument("--idle-cpu", type=float, default=60.0, help="seconds of idling to measure (0: skip)")
    args = parser.parse_args()

    harness.configure("sqlite")
    from benchmarks import tasks

    receiver = harness.StampReceiver()
    pickups = []
    with harness.Processes() as procs:
        harness.start_autotask_workers(procs, 1)
        (pid,) = procs.pids
        for _ in range(args.samples):
            time.sleep(random.uniform(0, args.spread))
            tasks.stamp(receiver.port)
            committed = time.time()
            started = receiver.receive(timeout=60)
            pickups.append(started - committed)
        if args.idle_cpu:
            time.sleep(2)  # the last task's outcome is written
            before = cpu_seconds(pid)
            time.sleep(args.idle_cpu)
            idle_cpu = cpu_seconds(pid) - before
    ms = [p * 1000 for p in pickups]
    print(
        f"pickup from another process, {len(ms)} samples: p50 {harness.median(ms):.1f} ms, "
        f"p95 {harness.percentile(ms, 0.95):.1f} ms, max {max(ms):.1f} ms"
    )
    if args.idle_cpu:
        print(
            f"idle worker CPU over {args.idle_cpu:.0f} s: {idle_cpu:.2f} s "
            f"({100 * idle_cpu / args.idle_cpu:.2f} % of a core)"
        )


if __name__ == "__main__":
    main()
