"""autotask as a benchmark target: the same verbs as :class:`benchmarks.plain.PlainTarget`."""

import time

from benchmarks import harness


class AutotaskTarget:
    """autotask driven the way a user drives it: decorated functions and run_autotask."""

    name = "autotask"

    def __init__(self, worker_args=()):
        self.worker_args = list(worker_args)

    def reset(self):
        harness.reset_tasks()

    def unfinished(self):
        return harness.unfinished_tasks()

    def counts(self):
        return harness.count_by_status()

    def start_workers(self, procs, count):
        harness.start_autotask_workers(procs, count, *self.worker_args)

    def enqueue_one(self, count, database=None):
        """Call a task ``count`` times, each call committed on its own (autocommit)."""
        from benchmarks.tasks import noop

        task = noop.using(database=database) if database else noop
        for _ in range(count):
            task()

    def enqueue_bulk(self, count):
        """Enqueue ``count`` calls with Task.enqueue_many (one transaction)."""
        from benchmarks.tasks import noop

        noop.enqueue_many([()] * count)

    def enqueue_stamp(self, port):
        from benchmarks.tasks import stamp

        stamp(port)


class PooledTarget(AutotaskTarget):
    """autotask workers claiming and finishing through PgBouncer in transaction mode.

    Their task database is the ``pooled`` alias (AUTOTASK_POOLER = "transaction"); they
    LISTEN on a direct connection ("default", AUTOTASK_LISTEN_DATABASE).  The benchmark
    process enqueues directly, as for the other targets.
    """

    name = "autotask through PgBouncer"
    ENV = {
        "BENCH_AUTOTASK_DATABASE": repr(harness.POOLED),
        "BENCH_AUTOTASK_POOLER": "'transaction'",
        "BENCH_AUTOTASK_LISTEN_DATABASE": "'default'",
    }

    def start_workers(self, procs, count):
        harness.start_autotask_workers(procs, count, *self.worker_args, env=self.ENV)


class UniqueTarget(AutotaskTarget):
    """autotask with a unique key on every task (the same workers run both)."""

    name = "autotask, unique keys"

    def enqueue_bulk(self, count):
        """Enqueue ``count`` calls of a unique task, each with a key of its own (one transaction)."""
        from benchmarks.tasks import unique_noop

        unique_noop.enqueue_many((f"k{i}",) for i in range(count))


class AsyncTarget(AutotaskTarget):
    """autotask running ``async def`` tasks that each await ``seconds`` (and, mixed, sync no-ops)."""

    committed_at = None  # time.time() of the last enqueue's commit, when enqueue_bulk returns after it

    def __init__(self, worker_args=(), seconds=0.1, sync_every=0, name="autotask, async"):
        super().__init__(worker_args)
        self.seconds = seconds
        self.sync_every = sync_every  # every n-th task a sync no-op (0: none)
        self.name = name

    def enqueue_bulk(self, count):
        """Enqueue ``count`` tasks in one transaction; mixed, the kinds interleaved as they would arrive.

        Mixed, the enqueue takes one call per run of async tasks, each adding
        its commit hook: :attr:`committed_at` is the commit itself, read by the
        first hook, not the return after all of them.
        """
        from django.db import transaction

        from benchmarks.aio_tasks import async_wait, sync_noop

        if not self.sync_every:
            self.committed_at = None
            async_wait.enqueue_many([(self.seconds,)] * count)
            return
        syncs = count // self.sync_every
        run = max(1, (count - syncs) // max(1, syncs))  # async tasks between two sync ones
        left = count - syncs
        with transaction.atomic():
            transaction.on_commit(self._committed)
            for index in range(syncs):
                batch = left if index == syncs - 1 else min(run, left)
                async_wait.enqueue_many([(self.seconds,)] * batch)
                left -= batch
                sync_noop.enqueue_many([()])

    def _committed(self):
        self.committed_at = time.time()


class LimitedTarget(AutotaskTarget):
    """autotask with a concurrency key on every task: KEYS keys, limit 1 (the same workers run both)."""

    name = "autotask, concurrency keys"

    def unfinished(self):
        # One statement: a task admitted between two of them would be missed.
        return bool(harness.execute(UNFINISHED_OR_HELD_SQL))

    def enqueue_bulk(self, count):
        """Enqueue ``count`` calls spread over the keys (one transaction; the first admission on commit)."""
        from benchmarks.tasks import KEYS, keyed_noop

        keyed_noop.enqueue_many((i % KEYS,) for i in range(count))


class HotKeyTarget(LimitedTarget):
    """Every task on one key limited to HOT_LIMIT, each recording its run (bench_span)."""

    name = "autotask, one hot key"

    def reset(self):
        super().reset()
        harness.execute("CREATE TABLE IF NOT EXISTS bench_span (b double precision, e double precision)")
        harness.execute("DELETE FROM bench_span")

    def enqueue_bulk(self, count):
        from benchmarks.tasks import hot_span

        hot_span.enqueue_many((i,) for i in range(count))

    def max_overlap(self):
        """The most runs open at one instant, from the runs' own records."""
        events = []
        for begin, end in harness.execute("SELECT b, e FROM bench_span"):
            events += [(begin, 1), (end, -1)]
        running = peak = 0
        for _, change in sorted(events):
            running += change
            peak = max(peak, running)
        return peak


UNFINISHED_OR_HELD_SQL = "SELECT 1 FROM autotask_taskqueue WHERE status IN (1, 2, 6) LIMIT 1"
