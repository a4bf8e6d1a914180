"""PostgreSQL: one-by-one enqueue latency from many threads while workers run, per time window.

    python -m benchmarks.enqueue_under_load [--threads 8] [--workers 2] [--seconds 60] [--window 10]

``--threads`` threads each call a ``delayed_task`` one by one (each call its
own transaction and commit) for ``--seconds`` while ``--workers``
``run_autotask`` processes run the tasks (``--workers 0``: nobody consumes).
Per window: enqueues, latency median and p95, and what was sampled every half
second meanwhile: the wait events of the database's active sessions (enqueuers
and workers), the NOTIFY queue's usage, the task table's live and dead rows,
autovacuum runs, and the claim indexes' sizes.

The database (``autotask_bench`` or $BENCH_PG_NAME) is dropped and created
afresh. BENCH_AUTOTASK_<NAME> sets AUTOTASK_<NAME> for this process and the
workers, as for ``python -m benchmarks``.
"""

import argparse
import collections
import threading
import time

from benchmarks import harness

SAMPLE_SECONDS = 0.5
STATS_SQL = (
    "SELECT n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count "
    "FROM pg_stat_user_tables WHERE relname = 'autotask_taskqueue'"
)
INDEX_SQL = (
    "SELECT COALESCE(SUM(pg_relation_size(indexrelid)), 0) FROM pg_stat_user_indexes "
    "WHERE relname = 'autotask_taskqueue'"
)
WAITS_SQL = (
    "SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU'), "
    "CASE WHEN application_name LIKE 'autotask worker%%' THEN 'worker' ELSE 'enqueue' END, COUNT(*) "
    "FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' "
    "AND pid <> pg_backend_pid() GROUP BY 1, 2"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()

    harness.configure("postgresql")
    from django.db import connection, connections

    from benchmarks import tasks

    latencies = collections.defaultdict(list)  # window -> seconds
    samples = collections.defaultdict(list)  # window -> sampled dicts
    stop = threading.Event()
    start = time.monotonic()

    def window():
        return int((time.monotonic() - start) // args.window)

    def enqueuer():
        try:
            while not stop.is_set():
                began = time.perf_counter()
                tasks.noop()
                latencies[window()].append(time.perf_counter() - began)
        finally:
            connections.close_all()

    def sampler():
        try:
            while not stop.wait(SAMPLE_SECONDS):
                with connection.cursor() as cursor:
                    cursor.execute(WAITS_SQL)
                    waits = {(event, who): n for event, who, n in cursor.fetchall()}
                    cursor.execute("SELECT pg_notification_queue_usage()")
                    (usage,) = cursor.fetchone()
                    cursor.execute(STATS_SQL)
                    live, dead, autovacuums, autoanalyzes = cursor.fetchone() or (0, 0, 0, 0)
                    cursor.execute(INDEX_SQL)
                    (index_bytes,) = cursor.fetchone()
                samples[window()].append(
                    {
                        "waits": waits,
                        "usage": usage,
                        "live": live,
                        "dead": dead,
                        "autovacuums": autovacuums,
                        "autoanalyzes": autoanalyzes,
                        "index_bytes": index_bytes,
                    }
                )
        finally:
            connections.close_all()

    with harness.Processes() as procs:
        if args.workers:
            harness.start_autotask_workers(procs, args.workers)
        start = time.monotonic()
        threads = [threading.Thread(target=enqueuer) for _ in range(args.threads)]
        threads.append(threading.Thread(target=sampler))
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        counts = harness.count_by_status()

    print(
        f"{args.threads} threads enqueuing one by one, {args.workers} workers, "
        f"{args.seconds:.0f} s; task rows at the end by status: {counts}"
    )
    print(
        "window   enqueues  median ms   p95 ms  notify queue  live rows  dead rows  autovac  "
        "index MB  wait events (share of sampled active sessions)"
    )
    for number in sorted(latencies):
        ms = [value * 1000 for value in latencies[number]]
        taken = samples.get(number) or [{}]
        last = taken[-1]
        waits = collections.Counter()
        for sample in taken:
            waits.update(sample.get("waits", {}))
        total = sum(waits.values()) or 1
        top = ", ".join(f"{who} {event} {100 * n / total:.0f}%" for (event, who), n in waits.most_common(4))
        print(
            f"{number * args.window:>3.0f}-{(number + 1) * args.window:<3.0f} {len(ms):>9} "
            f"{harness.median(ms):>10.2f} {harness.percentile(ms, 0.95):>8.2f} "
            f"{max(s.get('usage', 0) for s in taken):>13.6f} {last.get('live', 0):>10} "
            f"{last.get('dead', 0):>10} {last.get('autovacuums', 0):>8} "
            f"{last.get('index_bytes', 0) / 2**20:>9.1f}  {top}"
        )


if __name__ == "__main__":
    main()
