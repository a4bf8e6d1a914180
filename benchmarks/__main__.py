"""``python -m benchmarks``: measure autotask against plain SQL in the same run.

Examples::

    python -m benchmarks                          # PostgreSQL, then SQLite (a few minutes)
    python -m benchmarks --db postgresql --only pickup,throughput
    python -m benchmarks --db postgresql --scale --memory
    python -m benchmarks --db postgresql --only pgbouncer     # through PgBouncer vs direct
    python -m benchmarks --db postgresql --only big   # 8 workers, a big table, churn (~10 min)
    python -m benchmarks --db postgresql --only limits
    BENCH_PG_OPTIONS='{"server_side_binding": true, "prepare_threshold": 5}' python -m benchmarks
    BENCH_AUTOTASK_PREFETCH=0 python -m benchmarks --db postgresql --only throughput

PostgreSQL: a database ``autotask_bench`` on $AUTOTASK_TEST_PG (default
postgres://postgres@127.0.0.1:5432) is dropped and created afresh by
every run.  Raw samples are written to benchmarks/results/.  An environment
variable BENCH_AUTOTASK_<NAME> sets the setting AUTOTASK_<NAME> (a Python
literal) for the run and its workers.
"""

import argparse
import os
import subprocess
import sys
import time

BENCHMARKS = (
    "throughput",
    "pickup",
    "enqueue",
    "bulk",
    "workers4",
    "scale",
    "memory",
    "unique",
    "pgbouncer",
    "big",
    "workflows",
    "async",
    "processes",
    "limits",
)
DEFAULT = {
    "postgresql": ("throughput", "pickup", "enqueue", "bulk"),
    "sqlite": ("throughput", "enqueue", "bulk", "workers4"),
}
ONLY_ON = {
    "pickup": "postgresql",
    "scale": "postgresql",
    "workers4": "sqlite",
    "pgbouncer": "postgresql",
    "big": "postgresql",
}


def _positive(value):
    number = int(value.replace("_", "").replace(",", ""))
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return number


def _names(value):
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}"
        )
    return names


def _databases(value):
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or set(names) - {"postgresql", "sqlite"}:
        raise argparse.ArgumentTypeError("--db takes postgresql, sqlite or postgresql,sqlite")
    return names


def parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--db",
        type=_databases,
        default=["postgresql", "sqlite"],
        help="postgresql, sqlite, or both comma-separated (default: both)",
    )
    p.add_argument(
        "--only",
        type=_names,
        default=None,
        help=f"comma-separated benchmarks among {', '.join(BENCHMARKS)} (default: all but scale and memory)",
    )
    p.add_argument(
        "--scale", action="store_true", help="also run the scale benchmark (fills 2M rows; PostgreSQL)"
    )
    p.add_argument("--memory", action="store_true", help="also measure worker RSS over --memory-tasks tasks")
    p.add_argument("--repeat", type=_positive, default=3, help="runs per figure; the median is reported (3)")
    p.add_argument(
        "--workers", type=_positive, default=2, help="worker processes for PostgreSQL throughput (2)"
    )
    p.add_argument("--tasks", type=_positive, default=20_000, help="tasks per throughput run (20,000)")
    p.add_argument(
        "--small-tasks",
        type=_positive,
        default=5_000,
        help="tasks per run of the smaller throughput comparison and of the SQLite runs (5,000)",
    )
    p.add_argument("--pickup-samples", type=_positive, default=200, help="pickup latency samples (200)")
    p.add_argument(
        "--enqueue-count", type=_positive, default=2_000, help="one-by-one enqueues per run (2,000)"
    )
    p.add_argument("--bulk-count", type=_positive, default=20_000, help="calls per bulk enqueue (20,000)")
    p.add_argument(
        "--scale-rows",
        type=_positive,
        default=1_000_000,
        help="waiting rows, and finished rows, for --scale (1,000,000 each)",
    )
    p.add_argument(
        "--async-tasks", type=_positive, default=10_000, help="async tasks per run of --only async (10,000)"
    )
    p.add_argument(
        "--async-concurrency",
        type=_positive,
        default=1_000,
        help="the worker's AUTOTASK_ASYNC_CONCURRENCY in --only async (1,000)",
    )
    p.add_argument("--memory-tasks", type=_positive, default=100_000, help="tasks for --memory (100,000)")
    big = p.add_argument_group("big (--only big, PostgreSQL): many workers, a big table, pruning under load")
    big.add_argument("--big-workers", type=_positive, default=8, help="worker processes, one host each (8)")
    big.add_argument(
        "--big-finished", type=_positive, default=1_000_000, help="finished rows in the table (1,000,000)"
    )
    big.add_argument(
        "--big-waiting",
        type=_positive,
        default=100_000,
        help="waiting rows, scheduled for tomorrow (100,000)",
    )
    big.add_argument(
        "--big-full",
        action="store_true",
        help="the scale of issue 19: 10,000,000 finished + 1,000,000 waiting rows (long on 2 cores)",
    )
    big.add_argument(
        "--churn-rate", type=_positive, default=2_000, help="tasks/s of the sustained load (2,000)"
    )
    big.add_argument("--churn-seconds", type=_positive, default=300, help="seconds of sustained load (300)")
    big.add_argument(
        "--churn-clean-interval",
        type=_positive,
        default=10,
        help="AUTOTASK_CLEAN_INTERVALL of the churn's workers, seconds (10; the default is 600)",
    )
    return p


def selected(args, db):
    names = list(args.only or DEFAULT[db])
    names += [name for name in ("scale", "memory") if getattr(args, name) and name not in names]
    return [name for name in names if ONLY_ON.get(name, db) == db]


def run(db, args):
    from benchmarks import harness, report
    from benchmarks.suite import Suite

    started = time.time()
    harness.configure(db)
    suite = Suite(db, args)
    try:
        for name in selected(args, db):
            print(f"[{db}] {name} ...", flush=True)
            clock = time.monotonic()
            getattr(suite, f"run_{name}")()
            print(f"[{db}] {name} done in {time.monotonic() - clock:.0f} s", flush=True)
    finally:
        suite.close()
    path = report.save(db, suite, args, started)
    print()
    print(report.table(db, suite.figures))
    print(f"raw samples: {os.path.relpath(path)}; {time.time() - started:.0f} s\n", flush=True)


def main(argv=None):
    args = parser().parse_args(argv)
    if len(args.db) == 1:
        run(args.db[0], args)
        return 0
    # Django is configured once per process: each database runs in a process of its own.
    argv = list(sys.argv[1:] if argv is None else argv)
    status = 0
    for db in args.db:
        status |= subprocess.call([sys.executable, "-m", "benchmarks", *_without_db(argv), "--db", db])
    return status


def _without_db(argv):
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--db":
            skip = True
        elif not item.startswith("--db="):
            out.append(item)
    return out


if __name__ == "__main__":
    sys.exit(main())
