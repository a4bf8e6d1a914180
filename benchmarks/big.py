"""``--only big`` (PostgreSQL, on demand): many workers on a big table, and pruning under load.

Eight worker processes, each as if on a host of its own
(:mod:`benchmarks.host_worker`), first on the empty table, then on a table
filled with finished rows (kept for a day) and waiting rows (scheduled for
tomorrow, so that every claim must look past them), each filled by one
``INSERT ... SELECT ... generate_series``:

1. claim latency and no-op throughput, empty table against big table, in
   the same run;
2. a sustained load: tasks enqueued at a steady rate, each kept
   ``CHURN_TTL`` seconds once done, so that the workers' pruning deletes them
   while the load goes on; the table's and its indexes' sizes before and
   after, the dead row versions, and how often autovacuum (stock settings)
   ran.

The default scale (1,000,000 finished + 100,000 waiting rows, 300 s of
churn at 2,000 tasks/s) takes about six minutes on two cores; ``--big-full``
fills the scale of issue 19 (10,000,000 + 1,000,000): about eight minutes,
of which 80-120 s fill the table and 40 s vacuum it during the churn.
"""

import threading
import time

from benchmarks import harness
from benchmarks.targets import AutotaskTarget

CHANNEL_LISTEN = 'LISTEN "autotask_taskqueue"'
SAMPLE_SECONDS = 5.0  # how often the churn's state is sampled
ENQUEUE_TICK = 0.1  # the churn enqueues rate * ENQUEUE_TICK tasks this often


class HostsTarget(AutotaskTarget):
    """autotask workers, each started with a host name of its own (bench-host-1, -2, ...)."""

    name = "autotask, workers on separate hosts"

    def __init__(self, env=None):
        super().__init__()
        self.env = env or {}

    def start_workers(self, procs, count):
        import sys

        for index in range(count):
            argv = [sys.executable, "-m", "benchmarks.host_worker", f"bench-host-{index + 1}"]
            procs.start(argv, env=self.env)
        harness.wait_ready(procs, lambda: harness.listeners(CHANNEL_LISTEN) >= count)


def hosts_seen():
    """How many host names the finished rows' worker ids show."""
    sql = "SELECT COUNT(DISTINCT split_part(worker_id, ':', 1)) FROM autotask_taskqueue WHERE status = 3"
    return harness.execute(sql)[0][0]


def fill_big(finished, waiting):
    """Add ``finished`` done rows (kept a day) and ``waiting`` rows due tomorrow: one INSERT each."""
    columns = (
        "function, kind, queue, priority, status, args, result, created_at, scheduled_at, started_at, "
        "finished_at, expires_at, ttl, attempts, max_attempts, options, worker_id, error_message, "
        "traceback, history"
    )
    common = "'benchmarks.tasks.noop', 'delayed', 'default', 0"
    args = '\'{"args":[],"kwargs":{}}\''
    harness.execute(
        f"INSERT INTO autotask_taskqueue ({columns}) SELECT {common}, 3, {args}, 'null', "
        "now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour', "
        "now() - interval '1 hour', now() + interval '1 day', 300, 1, 1, '{}', "
        "'bench-host-0:1:' || (g %% 97), '', '', '[]' FROM generate_series(1, %s) AS g",
        [finished],
    )
    harness.execute(
        f"INSERT INTO autotask_taskqueue ({columns}) SELECT {common}, 1, {args}, NULL, now(), "
        "now() + interval '1 day' + g * interval '1 millisecond', NULL, NULL, NULL, 300, 0, 1, '{}', "
        "'', '', '', '[]' FROM generate_series(1, %s) AS g",
        [waiting],
    )
    harness.execute("VACUUM ANALYZE autotask_taskqueue")


def sizes():
    """The task table's size, its indexes' and its row counts from the statistics (bytes, rows)."""
    row = harness.execute(
        "SELECT pg_relation_size('autotask_taskqueue'), pg_indexes_size('autotask_taskqueue'), "
        "pg_total_relation_size('autotask_taskqueue'), n_live_tup, n_dead_tup, autovacuum_count, "
        "autoanalyze_count FROM pg_stat_user_tables WHERE relname = 'autotask_taskqueue'"
    )[0]
    keys = ("table", "indexes", "total", "live", "dead", "autovacuums", "autoanalyzes")
    result = dict(zip(keys, row, strict=True))
    result["each_index"] = dict(
        harness.execute(
            "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
            "WHERE relname = 'autotask_taskqueue' ORDER BY indexrelname"
        )
    )
    return result


def churn_state(first_id):
    """The churn's rows: waiting (due), running, done and kept, and expired but not pruned yet."""
    row = harness.execute(
        "SELECT "
        "(SELECT COUNT(*) FROM autotask_taskqueue WHERE status = 1 AND scheduled_at <= now()), "
        "(SELECT COUNT(*) FROM autotask_taskqueue WHERE status = 2), "
        "(SELECT COUNT(*) FROM autotask_taskqueue WHERE status >= 3 AND expires_at <= now()), "
        "(SELECT COUNT(*) FROM autotask_taskqueue WHERE id >= %s AND status >= 3)",
        [first_id],
    )[0]
    return dict(zip(("due", "running", "expired", "kept"), row, strict=True))


class Enqueuer(threading.Thread):
    """Enqueue churn tasks at ``rate`` per second until stopped (its own database connection)."""

    def __init__(self, rate):
        super().__init__(daemon=True)
        self.rate = rate
        self.enqueued = 0
        self.seconds = 0.0  # how long it has been enqueuing
        self.behind = 0.0  # seconds the enqueuing fell behind its schedule, at most
        self.error = None
        self.halt = threading.Event()

    def run(self):
        from django.db import connection

        from benchmarks.tasks import churn_noop

        start = time.monotonic()
        try:
            while not self.halt.is_set():
                wanted = int((time.monotonic() - start) * self.rate) - self.enqueued
                if wanted > 0:
                    churn_noop.enqueue_many([()] * wanted)
                    self.enqueued += wanted
                self.seconds = time.monotonic() - start
                self.behind = max(self.behind, self.seconds - self.enqueued / self.rate)
                self.halt.wait(ENQUEUE_TICK)
        except Exception as exc:  # noqa: BLE001 - reported by the benchmark, which stops
            self.error = exc
        finally:
            connection.close()


class StockVacuum(threading.Thread):
    """VACUUM the task table when stock autovacuum would, on a server where autovacuum is off.

    The benchmark does not change the server's settings.  Where ``autovacuum``
    is off, this thread does what the autovacuum launcher would do with the
    server's own autovacuum settings (stock unless changed): every
    ``autovacuum_naptime`` it vacuums the table once its dead row versions
    exceed ``autovacuum_vacuum_threshold`` + ``autovacuum_vacuum_scale_factor``
    times its rows, throttled by the autovacuum cost delay and limit.
    """

    def __init__(self):
        super().__init__(daemon=True)
        settings = dict(
            harness.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'autovacuum_naptime', "
                "'autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor', "
                "'autovacuum_vacuum_cost_delay', 'autovacuum_vacuum_cost_limit', 'vacuum_cost_limit')"
            )
        )
        self.needed = settings["autovacuum"] != "on"
        self.naptime = float(settings["autovacuum_naptime"])
        self.threshold = int(settings["autovacuum_vacuum_threshold"])
        self.scale = float(settings["autovacuum_vacuum_scale_factor"])
        limit = int(settings["autovacuum_vacuum_cost_limit"])
        self.cost_limit = limit if limit > 0 else int(settings["vacuum_cost_limit"])
        self.cost_delay = float(settings["autovacuum_vacuum_cost_delay"])
        self.runs = []  # (seconds into the churn, dead row versions, seconds the VACUUM took)
        self.error = None
        self.halt = threading.Event()

    def run(self):
        from django.db import connection

        start = time.monotonic()
        try:
            harness.execute(f"SET vacuum_cost_delay = '{self.cost_delay}ms'")
            harness.execute(f"SET vacuum_cost_limit = {self.cost_limit}")
            while not self.halt.wait(self.naptime):
                dead, rows = harness.execute(
                    "SELECT s.n_dead_tup, c.reltuples FROM pg_stat_user_tables s "
                    "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'autotask_taskqueue'"
                )[0]
                if dead > self.threshold + self.scale * max(rows, 0):
                    clock = time.monotonic()
                    harness.execute("VACUUM autotask_taskqueue")
                    self.runs.append((round(clock - start, 1), dead, round(time.monotonic() - clock, 1)))
                    print(f"  (stock autovacuum, emulated: VACUUM at {dead:,} dead rows)", flush=True)
        except Exception as exc:  # noqa: BLE001 - reported by the benchmark, which stops
            self.error = exc
        finally:
            connection.close()


def churn(workers, rate, seconds, clean_interval):
    """Sustained load with pruning: return (samples, sizes before, sizes after, summary)."""
    first_id = harness.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM autotask_taskqueue")[0][0]
    target = HostsTarget(env={"BENCH_AUTOTASK_CLEAN_INTERVALL": repr(clean_interval)})
    before = sizes()
    samples = []
    with harness.Processes() as procs:
        target.start_workers(procs, workers)
        enqueuer, vacuum = Enqueuer(rate), StockVacuum()
        started = time.monotonic()
        enqueuer.start()
        if vacuum.needed:
            print(
                "  the server's autovacuum is off: the benchmark vacuums as stock autovacuum would",
                flush=True,
            )
            vacuum.start()
        try:
            while time.monotonic() - started < seconds:
                time.sleep(SAMPLE_SECONDS)
                procs.check_alive()
                if enqueuer.error or vacuum.error:
                    raise RuntimeError(f"the churn failed: {enqueuer.error or vacuum.error!r}")
                state = churn_state(first_id)
                state.update(sizes(), at=round(time.monotonic() - started, 1), enqueued=enqueuer.enqueued)
                del state["each_index"]
                samples.append(state)
                print(
                    f"  churn {state['at']:5.0f} s: enqueued {state['enqueued']:,}, due {state['due']:,}, "
                    f"expired not pruned {state['expired']:,}, table {state['table'] / 2**20:,.0f} MiB, "
                    f"indexes {state['indexes'] / 2**20:,.0f} MiB, dead {state['dead']:,}, "
                    f"autovacuums {state['autovacuums']}",
                    flush=True,
                )
        finally:
            enqueuer.halt.set()
            vacuum.halt.set()
            enqueuer.join()
        end = churn_state(first_id)
        harness.wait_until(lambda: not churn_state(first_id)["due"], what="the churn's last tasks")
        # From the end of the load until the last due task was claimed (a VACUUM may still run).
        drained = time.monotonic() - started - enqueuer.seconds
        if vacuum.is_alive():
            vacuum.join()
        from benchmarks.suite import _check_output

        _check_output(target, procs.stop())
    after = sizes()
    summary = {
        "enqueued": enqueuer.enqueued,
        "seconds": enqueuer.seconds,
        "rate": enqueuer.enqueued / enqueuer.seconds,
        "due_at_end": end["due"],
        "expired_at_end": end["expired"],
        "drained_after": drained,
        "enqueue_behind_max": enqueuer.behind,
        "autovacuum_emulated": vacuum.needed,
        "vacuums": len(vacuum.runs) + after["autovacuums"] - before["autovacuums"],
        "vacuum_runs": vacuum.runs,
    }
    return samples, before, after, summary


def run_big(suite):
    """The big benchmark (see the module docstring); adds its figures to ``suite``."""
    from benchmarks.suite import _Backlog

    o = suite.options
    finished, waiting = (10_000_000, 1_000_000) if o.big_full else (o.big_finished, o.big_waiting)
    workers, count = o.big_workers, o.tasks
    suite.extra["big"] = big = {"finished": finished, "waiting": waiting, "workers": workers}

    suite.autotask.reset()
    empty_claim = suite.record("big_claim_empty", suite.claim_latency())
    empty_rate = suite.record("big_throughput_empty", suite.throughput(HostsTarget(), workers, count))
    big["hosts_seen"] = hosts_seen()
    if big["hosts_seen"] < 2 <= workers:
        raise RuntimeError(f"the tasks ran on {big['hosts_seen']} host(s), expected up to {workers}")
    print(f"  the last run's tasks ran on {big['hosts_seen']} of {workers} hosts", flush=True)
    suite.autotask.reset()
    big["sizes_empty"] = sizes()

    print(f"  filling the task table with {finished:,} finished and {waiting:,} waiting rows ...", flush=True)
    clock = time.perf_counter()
    fill_big(finished, waiting)
    big["fill_seconds"] = time.perf_counter() - clock
    big["sizes_filled"] = sizes()
    print(f"  filled in {big['fill_seconds']:.0f} s", flush=True)

    big_claim = suite.record("big_claim_full", suite.claim_latency())
    big_rate = suite.record("big_throughput_full", suite.throughput(_Backlog(HostsTarget()), workers, count))

    print(f"  churn: {o.churn_rate:,} tasks/s for {o.churn_seconds} s ...", flush=True)
    samples, before, after, summary = churn(workers, o.churn_rate, o.churn_seconds, o.churn_clean_interval)
    big.update(churn_samples=samples, churn_before=before, churn_after=after, churn=summary)

    size = f"{finished:,} finished + {waiting:,} waiting rows"
    suite.add(
        f"claim latency p50, {size}",
        "ms",
        harness.median(big_claim) * 1000,
        [("autotask, empty table", harness.median(empty_claim) * 1000)],
        higher_is_better=False,
    )
    suite.add(
        f"throughput, {workers} workers on {workers} hosts, {count:,} tasks, {size}",
        "tasks/s",
        harness.median(big_rate),
        [("autotask, empty table", harness.median(empty_rate))],
    )
    mib = 2**20
    note = (
        f"{summary['enqueued']:,} tasks in {summary['seconds']:.0f} s, {summary['expired_at_end']:,} expired "
        f"rows left, {summary['vacuums']} vacuums{' (stock, emulated)' * summary['autovacuum_emulated']}, "
        f"clean interval {o.churn_clean_interval:g} s"
    )
    suite.add(
        f"churn at {o.churn_rate:,} tasks/s, {workers} workers: table size after / before",
        "MiB",
        after["table"] / mib,
        [("table before", before["table"] / mib)],
        higher_is_better=False,
        note=note,
    )
    suite.add(
        "churn: indexes' size after / before",
        "MiB",
        after["indexes"] / mib,
        [("indexes before", before["indexes"] / mib)],
        higher_is_better=False,
    )
    suite.add(
        "churn: tasks done per second, sustained",
        "tasks/s",
        summary["enqueued"] / (summary["seconds"] + summary["drained_after"]),
        [("enqueued per second", summary["rate"])],
    )
    suite.autotask.reset()
