"""The measurements, each run for autotask and for the plain-SQL reference in the same run."""

import random
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from benchmarks import harness
from benchmarks.plain import PlainTarget
from benchmarks.targets import (
    AsyncTarget,
    AutotaskTarget,
    HotKeyTarget,
    LimitedTarget,
    PooledTarget,
    UniqueTarget,
)

PICKUP_WARMUP = 20  # probes discarded before pickup samples are kept (imports, caches, plans)
PICKUP_GAP_SECONDS = (0.02, 0.04)  # idle time before each probe, so the worker is waiting in select()
CLAIM_SAMPLES = 50  # claims timed for the claim-latency figure
PLAIN_BATCH = 100  # rows per claim and per completion in the batched reference
ENQUEUE_SLICES = 20  # turns the sides of a one-by-one enqueue run take (see Suite.enqueues)
WARMUP_TASKS = 500  # tasks new workers run, unmeasured, before a throughput run
ASYNC_SECONDS = 0.1  # what each task of the async benchmark awaits
ASYNC_THREADS = 4  # the worker's threads in the async benchmark (sync tasks, and the reference)
ASYNC_REFERENCE_TASKS = 200  # tasks of the thread-per-task reference (5 s on 4 threads)


@dataclass
class Figure:
    """One line of the report: autotask's figure and what it is compared with."""

    name: str
    unit: str
    autotask: float
    references: list = field(default_factory=list)  # (label, value)
    higher_is_better: bool = True
    note: str = ""


class Suite:
    def __init__(self, db, options):
        self.db = db
        self.options = options
        self.figures = []
        self.samples = {}
        self.extra = {}
        self.plain = PlainTarget(db)
        self.autotask = AutotaskTarget()
        self.cpu = {}  # (side, count): [(worker, server) CPU microseconds per task] of each measured run

    def record(self, key, values):
        self.samples[key] = values
        return values

    def add(self, *args, **kwargs):
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure

    def close(self):
        self.plain.close()

    # -- generic measurements ------------------------------------------------

    def throughput(self, target, workers, count, repeat=None, verify=None):
        """Tasks/s from the commit of ``count`` tasks (one transaction) until all are done."""
        return self.throughputs(target, workers, [count], repeat, verify)[count]

    def throughputs(self, target, workers, counts, repeat=None, verify=None):
        """Tasks/s for each of ``counts``, the sizes interleaved run by run; {count: [rates]}.

        The workers first run a small unmeasured batch (imports, caches, query
        plans).  Interleaving the sizes on the same workers keeps a drift of
        the machine (other load, a checkpoint) from passing for a difference
        between them.  ``verify()`` checks each measured run.
        """
        rates = {count: [] for count in counts}
        with harness.Processes() as procs:
            target.start_workers(procs, workers)
            self._run_batch(target, procs, min(min(counts), WARMUP_TASKS))
            for _ in range(repeat or self.options.repeat):
                for count in counts:
                    clock = harness.CpuClock(procs)
                    rates[count].append(self._run_batch(target, procs, count))
                    worker, server = clock.spent()
                    per_task = (worker * 1e6 / count, server * 1e6 / count)
                    self.cpu.setdefault((_side(target), count), []).append(per_task)
                    if verify:
                        verify()
        _check_output(target, procs.stop())
        return rates

    def _run_batch(self, target, procs, count):
        """Enqueue ``count`` tasks in one transaction; return tasks/s until all are done."""
        target.reset()
        target.enqueue_bulk(count)
        committed = getattr(target, "committed_at", None) or time.time()
        self._nudge(procs)
        finished = harness.wait_until(lambda: not target.unfinished(), what=f"{target.name} run")
        self._check_done(target, count)
        return count / (finished - committed)

    def pickup(self, target, samples):
        """Seconds from the enqueue commit to the task start, one idle worker."""
        latencies = []
        receiver = harness.StampReceiver()
        target.reset()
        try:
            with harness.Processes() as procs:
                target.start_workers(procs, 1)
                for index in range(PICKUP_WARMUP + samples):
                    time.sleep(random.uniform(*PICKUP_GAP_SECONDS))
                    target.enqueue_stamp(receiver.port)
                    committed = time.time()
                    started = receiver.receive()
                    if index >= PICKUP_WARMUP:
                        latencies.append(started - committed)
            _check_output(target, procs.stop())
        finally:
            receiver.close()
        return latencies

    def enqueues(self, sides, count, slices=1):
        """Enqueues/s of each of ``sides`` ({key: (target, enqueue)}); {key: median rate}.

        ``enqueue(n)`` enqueues ``n`` tasks on ``target``.  The commit latency
        of a shared machine drifts over seconds, so the sides take turns: each
        run of ``count`` is cut into ``slices``, and every side does one slice
        before any does the next (the order rotating slice by slice), so the
        sides of a run are measured over the same stretch of time.
        """
        keys = list(sides)
        targets = list({id(target): target for target, _enqueue in sides.values()}.values())
        rates = {key: [] for key in keys}
        for _ in range(self.options.repeat):
            spent = dict.fromkeys(keys, 0.0)
            for target in targets:
                target.reset()
            for index in range(slices):
                size = count // slices + (index < count % slices)
                for key in keys[index % len(keys) :] + keys[: index % len(keys)]:
                    enqueue = sides[key][1]
                    start = time.perf_counter()
                    enqueue(size)
                    spent[key] += time.perf_counter() - start
            for key in keys:
                rates[key].append(count / spent[key])
            for target in targets:
                target.reset()
        for key, values in rates.items():
            self.record(key, values)
        return {key: harness.median(values) for key, values in rates.items()}

    def _check_done(self, target, count):
        counts = target.counts()
        if counts.get(3, 0) != count or sum(counts.values()) != count:
            raise RuntimeError(f"{target.name}: expected {count} done tasks, found {counts}")

    # -- PostgreSQL and SQLite figures -------------------------------------------

    def run_throughput(self):
        o = self.options
        workers = o.workers if self.db == "postgresql" else 1
        counts = [o.tasks, o.small_tasks]
        ours = self.throughputs(self.autotask, workers, counts)
        one = self.throughputs(self.plain.with_batch(1), workers, counts)
        batch = self.throughputs(self.plain.with_batch(PLAIN_BATCH), workers, counts)
        self.plain.with_batch(1)
        for count in counts:
            self.record(f"throughput_{count}", ours[count])
            self.record(f"plain_1_throughput_{count}", one[count])
            self.record(f"plain_batch_throughput_{count}", batch[count])
            self.add(
                f"throughput, {workers} worker{'s' * (workers > 1)}, {count:,} tasks",
                "tasks/s",
                harness.median(ours[count]),
                [
                    ("plain SQL, 1 row/statement", harness.median(one[count])),
                    (f"plain SQL, {PLAIN_BATCH} rows/statement", harness.median(batch[count])),
                ],
            )
        big, small = counts
        self._add_cpu(big, workers)
        self.add(
            f"throughput at {big:,} / at {small:,}",
            "ratio",
            harness.median(ours[big]) / harness.median(ours[small]),
            [("plain SQL, 1 row/statement", harness.median(one[big]) / harness.median(one[small]))],
            note="1.00 = no slowdown as finished rows pile up",
        )

    def run_pgbouncer(self):
        """Throughput of workers claiming through PgBouncer (transaction mode) vs directly.

        The sides take turns, round by round, on fresh workers, so that a drift of the
        machine does not pass for a difference between them.
        """
        o = self.options
        harness.require_pgbouncer()
        pooled, direct = PooledTarget(), self.autotask
        rates = {"pooled": [], "direct": []}
        for round_ in range(o.repeat):
            order = [("direct", direct), ("pooled", pooled)]
            for key, target in order if round_ % 2 == 0 else order[::-1]:
                rates[key] += self.throughput(target, o.workers, o.tasks, repeat=1)
        self.record("pgbouncer_throughput", rates["pooled"])
        self.record("pgbouncer_direct_throughput", rates["direct"])
        self.add(
            f"throughput through PgBouncer, {o.workers} workers, {o.tasks:,} tasks",
            "tasks/s",
            harness.median(rates["pooled"]),
            [("autotask, direct connections", harness.median(rates["direct"]))],
            note="target >= 0.80: claims and finishes through the pooler, LISTEN direct",
        )

    def _add_cpu(self, count, workers):
        """The CPU time a task costs the workers and the database server, autotask and the references.

        CPU time per task moves much less than a rate with the load others put
        on a shared machine, and it bounds the throughput: with C cores, no
        side exceeds C / (its CPU time per task) tasks/s.
        """
        sides = [
            _side(self.autotask),
            _side(self.plain.with_batch(1)),
            _side(self.plain.with_batch(PLAIN_BATCH)),
        ]
        self.plain.with_batch(1)
        medians = {}
        for side in sides:
            runs = self.cpu.get((side, count), [])
            self.record(f"cpu_us_per_task_{side}_{count}", runs)
            medians[side] = [harness.median([run[i] for run in runs]) for i in (0, 1)] if runs else [0.0, 0.0]
        ours, one, batch = (medians[side] for side in sides)
        where = "workers + PostgreSQL" if self.db == "postgresql" else "workers"
        self.add(
            f"CPU per task ({where}), {workers} worker{'s' * (workers > 1)}, {count:,} tasks",
            "us",
            sum(ours),
            [
                ("plain SQL, 1 row/statement", sum(one)),
                (f"plain SQL, {PLAIN_BATCH} rows/statement", sum(batch)),
            ],
            higher_is_better=False,
            note=(
                f"autotask {ours[0]:.1f} + {ours[1]:.1f} us, plain {one[0]:.1f} + {one[1]:.1f} us "
                f"and {batch[0]:.1f} + {batch[1]:.1f} us (workers + server)"
            ),
        )

    def run_async(self):
        """Wall time of ``--async-tasks`` async tasks awaiting 100 ms each on one worker; mixed with sync.

        The reference is the same tasks with the event loop off
        (``--async-concurrency 0``: asyncio.run per task on the threads), on
        fewer tasks (it takes a thread per task), as tasks/s.
        """
        o = self.options
        count, slots, seconds = o.async_tasks, o.async_concurrency, ASYNC_SECONDS
        loop = ["--async-concurrency", str(slots)]
        threads = ["--concurrency", str(ASYNC_THREADS)]
        alone = AsyncTarget([*threads, *loop], seconds)
        mixed = AsyncTarget([*threads, *loop], seconds, sync_every=10, name="autotask, async + sync")
        off = AsyncTarget([*threads, "--async-concurrency", "0"], seconds, name="thread per task")
        rates = {
            "async": self.throughput(alone, 1, count),
            "mixed": self.throughput(mixed, 1, count),
            "off": self.throughput(off, 1, ASYNC_REFERENCE_TASKS),
        }
        for key, value in rates.items():
            self.record(f"async_{key}", value)
        floor = count * seconds / slots
        self.add(
            f"{count:,} async tasks awaiting {seconds * 1000:g} ms, 1 worker, async concurrency {slots}",
            "s",
            count / harness.median(rates["async"]),
            [("the same on threads (asyncio.run per task)", count / harness.median(rates["off"]))],
            higher_is_better=False,
            note=f"wall time; the reference extrapolated from {ASYNC_REFERENCE_TASKS} tasks on "
            f"{ASYNC_THREADS} threads; {floor:g} s is the floor at this concurrency",
        )
        self.add(
            f"the same, 1 in 10 a sync no-op ({ASYNC_THREADS} threads)",
            "s",
            count / harness.median(rates["mixed"]),
            [("async alone", count / harness.median(rates["async"]))],
            higher_is_better=False,
            note="wall time",
        )

    def run_pickup(self):
        ours = self.record("pickup", self.pickup(self.autotask, self.options.pickup_samples))
        plain = self.record(
            "plain_pickup", self.pickup(self.plain.with_batch(1), self.options.pickup_samples)
        )
        for name, fraction in (("p50", 0.5), ("p95", 0.95)):
            self.add(
                f"pickup latency {name}, idle worker",
                "ms",
                harness.percentile(ours, fraction) * 1000,
                [("plain SQL, LISTEN/NOTIFY", harness.percentile(plain, fraction) * 1000)],
                higher_is_better=False,
            )

    def run_enqueue(self):
        count = self.options.enqueue_count
        ours, plain = self.autotask, self.plain
        sides = {"enqueue_one": (ours, ours.enqueue_one), "plain_enqueue_one": (plain, plain.enqueue_one)}
        if self.db == "sqlite":
            rates = self.enqueues(sides, count, ENQUEUE_SLICES)
            self.add(
                f"enqueue one by one, {count:,} commits",
                "tasks/s",
                rates["enqueue_one"],
                [("plain SQL, INSERT", rates["plain_enqueue_one"])],
            )
            return
        sides["enqueue_one_prepared"] = (ours, partial(ours.enqueue_one, database=harness.PREPARED))
        sides["plain_enqueue_one_unprepared"] = (plain, partial(plain.enqueue_one, prepare=False))
        rates = self.enqueues(sides, count, ENQUEUE_SLICES)
        self.add(
            f"enqueue one by one, {count:,} commits",
            "tasks/s",
            rates["enqueue_one"],
            [
                ("plain SQL, INSERT+NOTIFY", rates["plain_enqueue_one"]),
                ("the same, never prepared", rates["plain_enqueue_one_unprepared"]),
            ],
            note="Django's default: nothing prepared; psycopg prepares the plain loop's statement",
        )
        self.add(
            "the same, prepare_threshold set",
            "tasks/s",
            rates["enqueue_one_prepared"],
            [("plain SQL, INSERT+NOTIFY", rates["plain_enqueue_one"])],
        )

    def run_bulk(self):
        count = self.options.bulk_count
        ours, plain = self.autotask, self.plain
        sides = {"enqueue_bulk": (ours, ours.enqueue_bulk), "plain_enqueue_bulk": (plain, plain.enqueue_bulk)}
        rates = self.enqueues(sides, count)
        self.add(
            f"bulk enqueue, {count:,} calls",
            "tasks/s",
            rates["enqueue_bulk"],
            [("plain SQL, one transaction", rates["plain_enqueue_bulk"])],
        )

    def _keyed_against_plain(self, keyed, name):
        """Median throughputs of ``keyed`` and of plain tasks, taking turns on the same workers.

        The runs alternate (none, keyed, none, ...) so that a drift of the
        machine does not pass for a difference.  Enqueueing is not timed.
        The samples are recorded as ``<name>_throughput`` and
        ``<name>_reference_throughput``.
        """
        o = self.options
        count, workers = o.small_tasks, o.workers
        plain = self.autotask
        rates = {plain.name: [], keyed.name: []}
        with harness.Processes() as procs:
            plain.start_workers(procs, workers)
            self._run_batch(plain, procs, min(count, WARMUP_TASKS))
            for _ in range(o.repeat):
                for target in (plain, keyed):
                    rates[target.name].append(self._run_batch(target, procs, count))
        _check_output(plain, procs.stop())
        self.record(f"{name}_throughput", rates[keyed.name])
        self.record(f"{name}_reference_throughput", rates[plain.name])
        return harness.median(rates[keyed.name]), harness.median(rates[plain.name])

    def run_unique(self):
        """Claim throughput when every task holds a unique key, against none, on the same workers."""
        o = self.options
        count, workers = o.small_tasks, o.workers
        ours, reference = self._keyed_against_plain(UniqueTarget(), "unique")
        self.add(
            f"throughput, {workers} workers, {count:,} tasks, each with a unique key",
            "tasks/s",
            ours,
            [("the same tasks without a key", reference)],
            note=f"{ours / reference:.0%} of the unkeyed figure (target: at least 50 %)",
        )

    def run_workflows(self):
        """A group of no-op tasks with a callback against plain tasks; set_progress in a loop."""
        from benchmarks import workflows

        workflows.run(self)

    def run_processes(self):
        """Process mode beside thread mode (benchmarks/processes.py)."""
        from benchmarks import processes

        processes.run(self)

    def run_limits(self):
        """Concurrency limits: claim throughput with a key on every task, and a hot key's limit held.

        First, as run_unique: none, keyed, none, ... on the same 2 workers, every
        keyed task on one of 1,000 keys with a limit of 1 (the first admission
        runs in the enqueue's commit, untimed like the enqueue).  Then every
        task on one key limited to N, on 2 workers of 8 threads each: the most
        runs open at once, read from the runs' own records, must not pass N.
        """
        from benchmarks.tasks import HOT_LIMIT, KEYS

        o = self.options
        count, workers = o.small_tasks, o.workers
        ours, reference = self._keyed_against_plain(LimitedTarget(), "limits")
        self.add(
            f"throughput, {workers} workers, {count:,} tasks, {KEYS:,} concurrency keys, limit 1",
            "tasks/s",
            ours,
            [("the same tasks without a key", reference)],
            note=f"{ours / reference:.0%} of the unlimited figure (target: at least 50 %)",
        )
        hot = HotKeyTarget(["--concurrency", "8"])
        with harness.Processes() as procs:
            hot.start_workers(procs, workers)
            hot_rate = self._run_batch(hot, procs, o.tasks)
        _check_output(hot, procs.stop())
        peak = hot.max_overlap()
        self.record("limits_hot_key", {"rate": hot_rate, "max_overlap": peak, "limit": HOT_LIMIT})
        self.add(
            f"one key limited to {HOT_LIMIT}, {workers} workers x 8 threads, {o.tasks:,} tasks: most at once",
            "runs",
            peak,
            [("the limit", HOT_LIMIT)],
            higher_is_better=False,
            note=f"{hot_rate:,.0f} tasks/s; from the runs' own records",
        )
        if peak > HOT_LIMIT:
            raise RuntimeError(f"the hot key's limit of {HOT_LIMIT} was passed: {peak} runs at once")

    def run_workers4(self):
        """SQLite: four worker processes share the work, with no error and no task run twice.

        The same no-op tasks as the one-worker figure (no task may be claimed
        twice: every row ends DONE after exactly one attempt), then tasks that
        each insert a row, so that a second run of any task would show.
        """
        count = self.options.small_tasks

        def claimed_once():
            if execute_scalar("SELECT COUNT(*) FROM autotask_taskqueue WHERE attempts != 1"):
                raise RuntimeError("4 workers: a task was claimed more than once")

        noop_rates = self.record("workers4", self.throughput(self.autotask, 4, count, verify=claimed_once))
        plain = self.record("plain_workers4", self.throughput(self.plain.with_batch(1), 4, count))
        mark_rates = self.record("workers4_marking", self.marking_throughput(4, count))
        self.add(
            f"4 workers, {count:,} tasks: no error, none twice",
            "tasks/s",
            harness.median(noop_rates),
            [("plain SQL, 1 row/statement", harness.median(plain))],
        )
        self.add(
            f"4 workers, {count:,} tasks each inserting a row",
            "tasks/s",
            harness.median(mark_rates),
            note="every task ran exactly once: one row per task, no duplicate",
        )

    def marking_throughput(self, workers, count):
        """Tasks/s for tasks that each insert a row; fail unless every task ran exactly once."""
        from benchmarks.tasks import mark

        harness.execute("CREATE TABLE IF NOT EXISTS bench_mark (key integer NOT NULL)")
        rates = []
        with harness.Processes() as procs:
            self.autotask.start_workers(procs, workers)
            for _ in range(self.options.repeat):
                self.autotask.reset()
                harness.execute("DELETE FROM bench_mark")
                mark.enqueue_many([(i,) for i in range(count)])
                committed = time.time()
                self._nudge(procs)
                finished = harness.wait_until(lambda: not self.autotask.unfinished(), what="marking run")
                self._check_done(self.autotask, count)
                runs, distinct = harness.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM bench_mark")[0]
                if runs != count or distinct != count:
                    raise RuntimeError(f"{runs} runs of {distinct} distinct tasks, expected {count} of each")
                rates.append(count / (finished - committed))
        _check_output(self.autotask, procs.stop())
        return rates

    # -- scale (PostgreSQL) --------------------------------------------------------

    def claim_latency(self, samples=CLAIM_SAMPLES, enqueue=None):
        """Seconds one claim of a worker-sized batch takes, whatever else the table holds.

        The claim asks for as many tasks as a busy worker with short tasks
        does (a free slot plus the most it claims ahead).  Before each claim
        ``enqueue`` tasks are added (default: a full batch; 0 when a backlog
        is there already).
        """
        from django.utils import timezone

        from autotask.conf import conf
        from autotask.db import get_ops
        from benchmarks.tasks import noop

        ops = get_ops()
        timings = []
        limit = 1 + getattr(conf, "PREFETCH", 0)
        enqueue = limit if enqueue is None else enqueue
        for _ in range(samples):
            if enqueue:
                noop.enqueue_many([()] * enqueue)
            now = timezone.now()
            start = time.perf_counter()
            claimed = ops.claim("bench-claim", None, limit, now + timedelta(seconds=30), now)
            timings.append(time.perf_counter() - start)
            if len(claimed) < min(limit, enqueue or limit):
                raise RuntimeError(f"the claim found {len(claimed)} tasks, fewer than are due")
        harness.execute("DELETE FROM autotask_taskqueue WHERE worker_id = 'bench-claim'")
        return timings

    def run_scale(self):
        """The same work with a big table: a due backlog, and tasks scheduled for later.

        The table holds ``--scale-rows`` finished rows kept for their ttl, plus
        as many waiting ones: first all scheduled for tomorrow (the claim must
        look past them), then all due (a backlog the workers work down).
        """
        o = self.options
        rows, count = o.scale_rows, o.tasks
        self.autotask.reset()
        empty_claim = self.record("claim_empty", self.claim_latency())
        empty_rate = self.samples.get(f"throughput_{count}")
        if empty_rate is None:
            empty_rate = self.record(f"throughput_{count}", self.throughput(self.autotask, o.workers, count))
        empty_pickup = self.samples.get("pickup")
        if empty_pickup is None:
            empty_pickup = self.record("pickup", self.pickup(self.autotask, o.pickup_samples))
        print(f"  filling the task table with {rows:,} scheduled and {rows:,} finished rows ...", flush=True)
        start = time.perf_counter()
        fill(rows)
        self.extra["fill_seconds"] = time.perf_counter() - start
        self.extra["claim_plan_scheduled"] = claim_plan()
        # A claim asking for more tasks than are due reads past every scheduled row.
        self.record("claim_scheduled", self.claim_latency(samples=20, enqueue=1))
        pickup = self.record("pickup_scheduled", self.pickup(_Backlog(self.autotask), o.pickup_samples))
        scheduled_rate = self.record(
            "throughput_scheduled", self.throughput(_Backlog(self.autotask), o.workers, count)
        )
        print(f"  making the {rows:,} scheduled rows due ...", flush=True)
        make_due()
        self.extra["claim_plan_backlog"] = claim_plan()
        backlog_claim = self.record("claim_backlog", self.claim_latency(enqueue=0))
        backlog_rate = self.record("throughput_backlog", self.backlog_throughput(count))
        size = f"{rows:,} waiting + {rows:,} finished rows"
        self.add(
            f"claim latency p50, {size}",
            "ms",
            harness.median(backlog_claim) * 1000,
            [("autotask, empty table", harness.median(empty_claim) * 1000)],
            higher_is_better=False,
        )
        self.add(
            f"throughput, {size} (working the backlog down)",
            "tasks/s",
            harness.median(backlog_rate),
            [("autotask, empty table", harness.median(empty_rate))],
        )
        later = f"{rows:,} scheduled for later + {rows:,} finished rows"
        self.add(
            f"pickup latency p50, {later}",
            "ms",
            harness.median(pickup) * 1000,
            [("autotask, empty table", harness.median(empty_pickup) * 1000)],
            higher_is_better=False,
        )
        self.add(
            f"throughput, {count:,} tasks, {later}",
            "tasks/s",
            harness.median(scheduled_rate),
            [("autotask, empty table", harness.median(empty_rate))],
        )
        self.autotask.reset()

    def backlog_throughput(self, count):
        """Tasks/s while workers work down a due backlog, over ``count`` tasks, after a warm-up."""
        rates = []
        with harness.Processes() as procs:
            self.autotask.start_workers(procs, self.options.workers)  # they start on the backlog at once
            for _ in range(self.options.repeat):
                first, start = done_since_fill(), time.time()
                finished = harness.wait_until(
                    lambda first=first: done_since_fill() >= first + count, interval=0.02, what="backlog run"
                )
                rates.append((done_since_fill() - first) / (finished - start))
        _check_output(self.autotask, procs.stop())
        return rates

    def run_big(self):
        from benchmarks.big import run_big

        run_big(self)

    # -- memory ----------------------------------------------------------------------

    def run_memory(self):
        count = self.options.memory_tasks
        target = self.autotask
        target.reset()
        rss = []
        with harness.Processes() as procs:
            target.start_workers(procs, 1)
            pid = procs.pids[0]
            # Warm up first: imports, plans and pools settle in the first tasks.
            target.enqueue_bulk(1000)
            self._nudge(procs)
            harness.wait_until(lambda: not target.unfinished(), what="memory warm-up")
            start_kib = harness.rss_kib(pid)
            target.reset()
            target.enqueue_bulk(count)
            self._nudge(procs)

            def done():
                rss.append((time.time(), harness.rss_kib(pid)))
                return not target.unfinished()

            harness.wait_until(done, interval=0.5, what="memory run")
            end_kib = harness.rss_kib(pid)
        _check_output(target, procs.stop())
        self.record("rss_kib", rss)
        self.extra["rss_start_kib"], self.extra["rss_end_kib"] = start_kib, end_kib
        self.add(
            f"worker RSS after {count:,} tasks",
            "MiB",
            end_kib / 1024,
            [("worker RSS at start", start_kib / 1024)],
            higher_is_better=False,
            note=f"peak {max(k for _, k in rss) / 1024:.1f} MiB",
        )
        target.reset()

    def _nudge(self, procs):
        """Wake SQLite workers as a local enqueue would (there is no NOTIFY to do it)."""
        if self.db == "sqlite":
            procs.signal(signal.SIGUSR1)


class _Backlog:
    """The autotask target over a pre-filled table: resets remove only the benchmark's rows."""

    def __init__(self, target):
        self.target = target
        self.name = target.name
        self.first_id = harness.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM autotask_taskqueue")[0][0]

    def __getattr__(self, name):
        return getattr(self.target, name)

    def reset(self):
        harness.execute("DELETE FROM autotask_taskqueue WHERE id >= %s", [self.first_id])
        harness.execute("VACUUM autotask_taskqueue")

    def unfinished(self):
        sql = harness.UNFINISHED_SQL.format(extra=" AND id >= %s")
        return bool(harness.execute(sql, [self.first_id, self.first_id])[0][0])

    def counts(self):
        sql = "SELECT status, COUNT(*) FROM autotask_taskqueue WHERE id >= %s GROUP BY status"
        return dict(harness.execute(sql, [self.first_id]))


def _side(target):
    """A throughput side's name: the target's, with the plain worker's batch size."""
    batch = getattr(target, "batch", None)
    return target.name if batch is None else f"{target.name}, {batch} rows/statement"


def fill(rows):
    """Add ``rows`` waiting tasks (due tomorrow) and ``rows`` finished ones (kept for a day)."""
    columns = (
        "function, kind, queue, priority, status, args, result, created_at, scheduled_at, finished_at, "
        "expires_at, ttl, attempts, max_attempts, options, worker_id, error_message, traceback, history"
    )
    common = "'benchmarks.tasks.noop', 'delayed', 'default', 0"
    harness.execute(
        f'INSERT INTO autotask_taskqueue ({columns}) SELECT {common}, 1, \'{{"args":[],"kwargs":{{}}}}\', '
        "NULL, now(), now() + interval '1 day' + g * interval '1 millisecond', NULL, NULL, 300, 0, 1, "
        "'{}', '', '', '', '[]' FROM generate_series(1, %s) AS g",
        [rows],
    )
    harness.execute(
        f'INSERT INTO autotask_taskqueue ({columns}) SELECT {common}, 3, \'{{"args":[],"kwargs":{{}}}}\', '
        "'null', now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour', "
        "now() + interval '1 day', 300, 1, 1, '{}', 'gone', '', '', '[]' FROM generate_series(1, %s) AS g",
        [rows],
    )
    harness.execute("VACUUM ANALYZE autotask_taskqueue")


def execute_scalar(sql, params=None):
    return harness.execute(sql, params)[0][0]


def make_due():
    """Make every waiting task due now (a backlog), in one transaction."""
    harness.execute(
        "UPDATE autotask_taskqueue SET scheduled_at = now() - interval '1 second' WHERE status = 1"
    )
    harness.execute("VACUUM ANALYZE autotask_taskqueue")


def done_since_fill():
    """Count the rows finished since the table was filled (theirs are kept a day, ours ttl 300 s)."""
    sql = (
        "SELECT COUNT(*) FROM autotask_taskqueue WHERE status >= 3 AND expires_at < now() + interval '1 hour'"
    )
    return harness.execute(sql)[0][0]


def claim_plan():
    """EXPLAIN of the worker's claim statement, as text."""
    from django.utils import timezone

    from autotask.db import get_ops

    now = timezone.now()
    ops = get_ops()
    # A private hook since the driver contract was listed; public before.
    statement = getattr(ops, "_claim_statement", None) or getattr(ops, "claim_statement", None)
    if statement is None:
        return "(this version has no claim_statement to explain)"
    sql, params = statement("bench-plan", None, 1, now + timedelta(seconds=30), now)
    return "\n".join(row[0] for row in harness.execute("EXPLAIN " + sql, params))


def _check_output(target, output):
    """Fail on a worker's traceback; show anything else it logged (no-op tasks log nothing)."""
    if "Traceback" in output:
        raise RuntimeError(f"{target.name} workers reported errors:\n{output[-4000:]}")
    if output.strip():
        print(f"  ({target.name} workers said: {output.strip()[-500:]})", flush=True)
