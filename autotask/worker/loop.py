"""The worker loop: wait, claim up to the free slots, execute, write outcomes back.

One main thread owns the worker's own database connection (kept open across
tasks) and does all the queue bookkeeping; task functions run in a pool of
``concurrency`` threads, each with the connections Django gives that thread.
"""

import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from .. import tracing
from ..conf import conf
from ..context import reports
from ..db import flow, hint_for, new_ops, pooling
from ..enqueue import workflows
from ..maintenance import pruning, scheduling
from ..maintenance.heartbeat import forget_worker, heartbeat
from ..maintenance.recovery import recover
from ..maintenance.stats import prune_stats, write_stats
from ..maintenance.stops import stop_requests
from ..maintenance.timers import Timers
from ..task import CANCELLED, DONE, WAITING
from . import identity
from .aio import AsyncRunner
from .claims import ClaimSizing
from .outcomes import Outcomes
from .parent import ParentLink
from .pool import HOLD_SECONDS, TaskPool
from .processes import ChildPool
from .stats import TaskStatsBuffer
from .stops import Stops
from .wakeups import MAX_BACKOFF, Wakeups

logger = logging.getLogger("autotask")

# Progress and metadata of running tasks are written at most this often (seconds).
REPORT_INTERVAL = 0.5
# Seconds the event loop started no task, past which the async tasks it holds
# are given back and left to other workers for HOLD_SECONDS (see _release_if_held).
LOOP_FULL_SECONDS = 1.0
OUTCOME_KEYS = {DONE: "done", WAITING: "retried", CANCELLED: "cancelled"}  # else "failed"


class StopState:
    """Whether the worker stops, and by when running tasks must have ended.

    Main thread only: :meth:`Worker.stop` runs there, from the loop, from
    signal handlers (which Python runs on the main thread) and when the
    parent link ends.
    """

    def __init__(self):
        self.stopping = False
        self.deadline = None  # monotonic time at which a graceful stop becomes immediate

    def overdue(self):
        return self.deadline is not None and time.monotonic() >= self.deadline

    def cap(self, timeout):
        """``timeout``, shortened to end at the deadline."""
        if self.deadline is None:
            return timeout
        return min(timeout, max(0.0, self.deadline - time.monotonic()))


def new_worker_id():
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Run tasks until stopped (or, with ``drain``, until nothing is due).

    The main thread runs the loop and every database call; the worker's
    changing state lives in the objects it composes, each saying which thread
    owns it or which lock guards it: ``sizing`` (claim sizing), ``outcomes``
    (the outcome buffer), ``pool`` (the tasks held here, on their way to the
    pool threads), ``wakeups`` (the sleep and what ends it), ``stop_state``
    and ``parent`` (the link to the Django process that started this worker).
    The rest is set up once, except ``failures``, ``timers`` and ``stats``
    (main thread only).
    """

    def __init__(
        self,
        queues=None,
        concurrency=None,
        drain=False,
        async_concurrency=None,
        idle_time=None,
        listen=None,
        using=None,
        worker_id=None,
        handle_signals=True,
        identify=False,
        processes=None,
    ):
        self.queues = list(queues or conf.QUEUES or []) or None
        # Process mode: that many child processes, each driven by a pool thread.
        self.processes = conf.PROCESSES if processes is None else processes or None
        self.concurrency = self.processes or concurrency or conf.CONCURRENCY
        if self.processes and (concurrency or conf.CONCURRENCY) not in (1, self.processes):
            logger.warning(
                "process mode: worker runs %s tasks at once, one per child process; its concurrency "
                "setting (%s) is not used",
                self.processes,
                concurrency or conf.CONCURRENCY,
            )
        self.async_concurrency = conf.ASYNC_CONCURRENCY if async_concurrency is None else async_concurrency
        self.drain = drain
        self.idle_time = conf.HANDLE_TASK_IDLE_TIME if idle_time is None else idle_time
        listen = conf.LISTEN if listen is None else listen
        self.using = using or conf.DATABASE
        self.worker_id = worker_id or new_worker_id()
        self.handle_signals = handle_signals
        # A worker process of its own (run_autotask) names itself: in
        # PostgreSQL's application_name and, with setproctitle, its process title.
        self.title = None
        if identify:
            identity.label_connections(self.worker_id)
            self.title = identity.ProcessTitle(self.worker_id, self.queues)
        self.lease = timedelta(seconds=conf.LEASE_SECONDS)
        # An ops object of its own: what own_session() sets up is this worker's.
        connection = connections[self.using]
        self.ops = new_ops(connection)
        # Prepared statements and session settings need a session of the worker's
        # own: not through a transaction pooler (AUTOTASK_POOLER, or AUTOTASK_LISTEN
        # off), nor with Django's connection pool (see db.pooling).
        if pooling.own_session(connection, listen):
            self.ops.own_session(self.queues)
        if listen and self.ops.supports_listen and pooling.listen_connection(connection) is None:
            logger.warning(
                "AUTOTASK_POOLER is 'transaction' and AUTOTASK_LISTEN_DATABASE is not set: worker %s "
                "cannot LISTEN through the pooler and looks for new tasks every %s s "
                "(AUTOTASK_HANDLE_TASK_IDLE_TIME). Name a direct connection in AUTOTASK_LISTEN_DATABASE "
                "to wake on notifications, or set AUTOTASK_LISTEN = False.",
                self.worker_id,
                self.idle_time,
            )
            listen = False
        self.sizing = ClaimSizing(self.concurrency)
        self.outcomes = Outcomes()
        self.wakeups = Wakeups(self.ops, self.queues, listen)
        self.stops = Stops()  # the attempts running here, to stop them when asked
        # async def tasks run on an event loop of their own (none: on the threads, one at a time each).
        self.aio = (
            AsyncRunner(self.async_concurrency, self.worker_id, self.outcomes, self.wakeups, self.stops)
            if self.async_concurrency
            else None
        )
        # Child processes: every task's in process mode, else those that need one (started on demand).
        self.children = ChildPool(
            self.concurrency,
            self.worker_id,
            everything=bool(self.processes),
            max_tasks=conf.CHILD_MAX_TASKS,
            max_memory=conf.CHILD_MAX_MEMORY,
        )
        self.pool = TaskPool(
            self.concurrency,
            self.worker_id,
            self.sizing,
            self.outcomes,
            self.wakeups,
            self.aio,
            self.stops,
            self.children,
        )
        self.stop_state = StopState()
        self.parent = ParentLink.from_environ()  # the Django process that started this worker, if any
        self.failures = 0
        self.claims_resume = 0.0  # monotonic time before which the loop claims nothing (after a give-back)
        self.timers = Timers()
        self.limited = {}  # task id -> concurrency key, for tasks whose outcome is not written yet
        self.stats = {"done": 0, "failed": 0, "retried": 0, "cancelled": 0}
        self.task_stats = TaskStatsBuffer()  # the figures of the dashboard and the metrics
        # Workflow steps among the pending outcomes (main thread): see _write_steps.
        self.steps_pending = False
        # Progress and metadata (context.reports): when next written, and what a
        # database error left unwritten (main thread).
        self.reports_due = 0.0
        self.unwritten_reports = {}

    @property
    def running(self):
        """Tasks held here whose outcome is not collected yet."""
        return self.pool.running

    # -- lifecycle -------------------------------------------------------

    def run(self):
        """Run the loop; return the process exit code."""
        if self.handle_signals:
            self._install_signal_handlers()
        if self.parent:
            self.parent.watch(self._parent_gone)
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="autotask-task")
        reports.consume(self.worker_id, self.wake)  # a task's first report wakes the loop to time its write
        if self.processes:
            self.children.start()
        logger.info(
            "worker %s started (queues: %s, concurrency %s%s, async concurrency %s)",
            self.worker_id,
            ",".join(self.queues or ["all"]),
            self.concurrency,
            " child processes" if self.processes else "",
            self.async_concurrency,
            extra={"worker_id": self.worker_id},
        )
        if conf.TRACING and tracing.unconfigured():
            logger.warning(
                "AUTOTASK_TRACING is on but this worker process has no OpenTelemetry tracer "
                "provider: its spans are dropped. Configure one where the worker starts (settings, "
                "an AppConfig.ready(), or opentelemetry-instrument).",
                extra={"worker_id": self.worker_id},
            )
        try:
            self._loop(executor)
        finally:
            executor.shutdown(wait=True)
            if self.aio:
                self.aio.close()
            self.children.close()
            self._flush()
            self._write_stats()
            reports.release(self.worker_id)
            self._close()
        logger.info("worker %s stopped", self.worker_id, extra={"worker_id": self.worker_id, **self.stats})
        return 0

    def stop(self, immediate=False, grace=None):
        """Stop claiming; with ``immediate``, leave at once (running tasks are recovered later).

        With ``grace``, running tasks get that many seconds before the stop becomes immediate.
        """
        state = self.stop_state
        if grace is not None and state.deadline is None:
            state.deadline = time.monotonic() + grace
        if immediate:
            logger.warning("worker %s stopping at once", self.worker_id)
            os._exit(1)
        if not state.stopping:
            logger.info(
                "worker %s stopping: it claims no more tasks and will finish its running tasks "
                "(signal it again to stop at once)",
                self.worker_id,
            )
        state.stopping = True
        self.wake()

    def wake(self):
        self.wakeups.wake()

    def _install_signal_handlers(self):
        def on_stop(signum, frame):
            self.stop(immediate=self.stop_state.stopping)

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        # SIGUSR1 is a "tasks were enqueued" nudge from outside (a supervising Django
        # process writes to its socket pair instead; see ParentLink).
        signal.signal(signal.SIGUSR1, lambda signum, frame: self.wake())

    # -- the loop --------------------------------------------------------

    def _loop(self, executor):
        pool = self.pool
        while True:
            self._collect()
            # The link to the Django process: its end, and wake-up bytes that
            # came with a NOTIFY, are read before claiming (_wait reads it too).
            self._check_parent()
            self._check_stops()
            if self.stop_state.stopping:
                if self._stopping_turn(executor):
                    return
                continue
            self._maintain()
            if self.task_stats.due():
                self._write_stats()
            if self.unwritten_reports or (reports.changed and time.monotonic() >= self.reports_due):
                self._write_reports()
            self._release_if_held()
            self.sizing.loop_slots = pool.slots - self.concurrency  # once an async task was seen
            wanted = self.sizing.claim_size(pool.running, pool.buffered())
            if wanted and self.claims_resume and time.monotonic() < self.claims_resume:
                wanted = 0  # tasks just given back for want of a slot of their kind: for another worker
            claimed, started = self._claim(wanted) if wanted else ([], True)  # writes the outcomes too
            if not wanted and self.outcomes.due(pool.busy()):
                self._flush()
            if claimed:
                pool.take_on(claimed, started)
            if pool.ahead:
                self._start_ahead()
            pool.dispatch(executor)
            idle = not pool.running and not claimed and self.failures == 0
            if self.drain and idle and self.ops_safe(self._nothing_due):
                return
            if self.title:
                self.title.show(f"running {pool.running}" if pool.running else "idle")
            if pool.running < pool.slots:
                self._wait(self._idle_timeout())
            else:
                # Every slot is busy (after a full claim, the buffer too): wait for
                # a pool thread to ask for more, rather than hold the GIL while
                # tasks start.
                self._wait(self._busy_timeout())

    def _stopping_turn(self, executor):
        """One loop turn of a graceful stop; return True once nothing runs here any more."""
        self._flush()
        # Claimed ahead, beyond the free slots: back to the queue.  A task
        # claimed for a free slot is shown running and starts anyway, on a
        # pool thread started here when the last one has just ended.
        self._give_back(self.pool.take_ready(keep=self.concurrency))
        self.pool.dispatch(executor)
        if not self.pool.running:
            return True
        if self.stop_state.overdue():
            self.stop(immediate=True)
        self._maintain()  # keep renewing the leases of the tasks still running
        if self.title:
            self.title.show(f"stopping, running {self.pool.running}")
        self._wait(None)
        return False

    def _busy_timeout(self):
        """Seconds to wait with every slot busy: until buffered work needs a look, at most."""
        timeout = None
        if self.pool.ready or self.pool.ahead:
            timeout = HOLD_SECONDS  # claimed-ahead tasks may have to be given back
        due = self.outcomes.seconds_to_due()
        if due is not None:
            timeout = due if timeout is None else min(timeout, due)
        return timeout

    def _start_ahead(self):
        """Mark claimed-ahead tasks started in the database, then hand them to the pool threads."""
        tasks = self.pool.to_start()
        if tasks:
            now = timezone.now()
            rated = [task for task in tasks if "rate_limit" in task.options]
            if rated:
                tasks, marked = self._start_rated(tasks, rated, now)
            else:
                marked = self.ops_safe(self.ops.start, self.worker_id, [task.id for task in tasks], now)
            self.pool.started(tasks, marked)

    def _start_rated(self, tasks, rated, now):
        """Start ``tasks``, the ``rated`` among them through the rate gate; (tasks kept, ids marked)."""
        plain = [task for task in tasks if "rate_limit" not in task.options]
        marked = []
        if plain:
            marked = self.ops_safe(self.ops.start, self.worker_id, [task.id for task in plain], now)
            if marked is False:
                return tasks, False  # nothing marked: all of them again at the next loop turn
        passed = self.ops_safe(flow.gate, self.ops, self.worker_id, rated, now, False)
        if passed is False:
            self.pool.started(rated, False)  # the gate rolled back: these again at the next loop turn
            return plain, marked
        through, back = passed
        self.pool.dropped(back)  # back in the queue, due when their window has room
        back_ids = {task.id for task in back}
        return [task for task in tasks if task.id not in back_ids], [*marked, *(task.id for task in through)]

    def _release_if_held(self):
        """Give claimed-ahead tasks back when no slot has started a task for HOLD_SECONDS."""
        waited = self.pool.held_too_long()
        if waited is not None:
            # A task turned out long: count it so, or the next claim would
            # take another batch to hold.
            self.sizing.timed(waited)
            self._give_back(self.pool.take_ready())
            if (
                self.aio is not None
                and self.aio.offered
                and (self.pool.held_sync or waited > LOOP_FULL_SECONDS)
            ):
                # Claims do not choose the kind: claiming at once would take the
                # same tasks again, before a worker with a free slot of their kind.
                # (Async tasks held while the loop's tasks end every moment are
                # claimed again at once: they start here soonest.)
                self.claims_resume = time.monotonic() + HOLD_SECONDS
        elif self.pool.unreleased:
            self._give_back([])  # an earlier give-back met a database error: again

    def _give_back(self, tasks):
        """Return claimed-ahead ``tasks`` to the queue for any worker (retried after errors)."""
        pool = self.pool
        pool.unreleased.extend(tasks)
        if pool.unreleased and self.ops_safe(self.ops.release, self.worker_id, pool.unreleased) is not False:
            pool.released()

    def _claim(self, free):
        """Claim up to ``free`` tasks, writing the collected outcomes in the same round trip.

        Return the tasks and whether the claim marked them started.
        """
        if self.steps_pending or reports.changed:
            self._before_outcomes()
        now = timezone.now()
        written = self.outcomes.pending
        clock = time.monotonic()
        # Tasks for the idle slots start at once: claimed as started.  A claim
        # beyond them only claims; _start_ahead marks them as they are needed.
        started = self.pool.claim_started(free)
        lease_until = now + self.lease
        if self.limited and any(outcome.id in self.limited for outcome in written):
            claimed = self._claim_after_limited(free, lease_until, now, started)
        else:
            finish_and_claim = self.ops.finish_and_claim
            claimed = self.ops_safe(
                finish_and_claim, self.worker_id, written, self.queues, free, lease_until, now, started
            )
        if claimed is False:
            return [], started  # the outcomes stay pending and go with the next write
        self.sizing.claimed(free, len(claimed), time.monotonic() - clock)
        self._written(written)
        if started and any("rate_limit" in task.options for task in claimed):
            claimed = self._rate_gate(claimed, now)
        return claimed, started

    def _claim_after_limited(self, free, lease_until, now, started):
        """Write outcomes that free slots of concurrency keys, admit the next tasks of those keys, claim.

        One transaction: the claim may take the tasks just admitted.  The
        other workers are woken only for admitted tasks the claim leaves.
        Return the tasks claimed, or False after a database error (the
        outcomes stay pending; the admission sweep covers the rest).
        """
        written = self.outcomes.pending
        keys = {self.limited[o.id] for o in written if o.id in self.limited}

        def finish_admit_claim():
            # MySQL's claim retries lock conflicts in transactions of its own: not inside another.
            one = self.ops.vendor != "mysql"
            with transaction.atomic(using=self.using, savepoint=False) if one else contextlib.nullcontext():
                self.ops.finish(self.worker_id, written)
                queues = flow.admit_queues(self.ops, now, keys)
                claimed = self.ops.claim(self.worker_id, self.queues, free, lease_until, now, started)
            return queues, claimed

        result = self.ops_safe(finish_admit_claim)
        if result is False:
            return False
        queues, claimed = result
        for outcome in written:
            self.limited.pop(outcome.id, None)  # admitted: _written need not
        if queues and len(claimed) >= free:
            self.ops_safe(self.ops.notify, None, set(queues))  # admitted tasks left for the others
        return claimed

    def _rate_gate(self, claimed, now):
        """The claimed tasks that may start now: rate-limited ones pass the gate (autotask.db.flow).

        Those over their rate are back in the queue, due when their window has room.
        """
        rated = [task for task in claimed if "rate_limit" in task.options]
        passed = self.ops_safe(flow.gate, self.ops, self.worker_id, rated, now, True)
        if passed is False:
            # The gate could not run: none of them runs here; they go back to the queue.
            self.pool.hold_back(rated)
            self._give_back([])
            through = []
        else:
            through = passed[0]
        through_ids = {task.id for task in through}
        return [task for task in claimed if "rate_limit" not in task.options or task.id in through_ids]

    def _flush(self):
        """Write the outcomes of finished tasks in one batch."""
        self._collect()
        if self.steps_pending or reports.changed:
            self._before_outcomes()
        written = self.outcomes.pending
        if written and self.ops_safe(self.ops.finish, self.worker_id, written) is not False:
            self._written(written)

    def _written(self, written, forget=True):
        """Forget ``written`` outcomes (now stored) and do what follows storing them."""
        if forget:
            self.outcomes.written()
        if self.limited:
            # Slots of concurrency keys were freed: admit the next tasks of those keys.
            keys = {self.limited.pop(o.id) for o in written if o.id in self.limited}
            if keys:
                self.ops_safe(flow.admit, self.ops, timezone.now(), keys)
        scheduled = [outcome for outcome in written if outcome.schedule_id]
        if scheduled:
            self.ops_safe(scheduling.record_outcomes, self.using, scheduled)

    def _before_outcomes(self):
        """Written before the pending outcomes: the ended tasks' last reports, the workflow steps."""
        ended = {outcome.id for outcome in self.outcomes.pending}
        if reports.changed and ended:
            self._write_reports(ended)
        if self.steps_pending:
            self._write_steps()

    def _write_reports(self, only=None):
        """Write the progress and metadata the tasks reported (``only``: of these task ids)."""
        taken = reports.take(self.worker_id, only)
        if only is None:
            self.reports_due = time.monotonic() + REPORT_INTERVAL
        if self.unwritten_reports:
            taken = {**self.unwritten_reports, **taken}
        if not taken:
            return
        if self.ops_safe(self.ops.write_reports, self.worker_id, taken) is False:
            self.unwritten_reports = taken
        else:
            self.unwritten_reports = {}

    def _write_steps(self):
        """Write the final outcomes of workflow steps, each batch with its workflows' advance.

        Their own transaction (see workflows.finish_steps); the other outcomes
        stay for the batched finish.  Retries of steps are plain outcomes.
        """
        pending = self.outcomes.pending
        steps = [o for o in pending if o.workflow is not None and o.status != WAITING]
        if steps and self.ops_safe(workflows.finish_steps, self.ops, self.worker_id, steps) is False:
            return  # kept pending: written with the next batch
        self.steps_pending = False
        if steps:
            self.outcomes.pending = [o for o in pending if o.workflow is None or o.status == WAITING]
            self._written(steps, forget=False)

    def _write_stats(self):
        """Write this worker's statistics (kept for the next write after a database error)."""
        buffer = self.task_stats
        if not buffer.changed:
            return
        minutes, totals = buffer.to_write()
        if self.ops_safe(write_stats, self.using, self.worker_id, minutes, totals) is False:
            buffer.retry_later()
        else:
            buffer.written()

    def _collect(self):
        """Take what the pool threads reported: outcomes to write, durations, and stopped runners."""
        self.wakeups.nudged = False
        ended, runners_done = self.outcomes.collect()
        if ended or runners_done:
            for task, outcome, seconds, started_wall in ended:
                self.sizing.timed(seconds)
                if outcome is not None and "workflow" in task.options:
                    outcome.workflow = task.options["workflow"]
                    self.steps_pending = True
                if outcome is not None and "concurrency_key" in task.options:
                    self.limited[task.id] = task.options["concurrency_key"]
                if outcome is not None:
                    self._count(outcome)
                    self.task_stats.add(task, outcome, seconds, started_wall)
            self.pool.ended([item[0].id for item in ended], runners_done)

    def _count(self, outcome):
        self.stats[OUTCOME_KEYS.get(outcome.status, "failed")] += 1

    def _nothing_due(self):
        due = self.ops.next_due(self.queues)
        return due is None or due > timezone.now()

    def _idle_timeout(self):
        """Seconds to wait when there is free capacity: until the next due task at most."""
        timeout = min(self.idle_time, self.timers.seconds_to_next(), self.task_stats.seconds_to_write())
        due = self.ops_safe(self.ops.next_due, self.queues)
        if due:
            timeout = min(timeout, max(0.0, (due - timezone.now()).total_seconds()))
        if self.drain:
            timeout = min(timeout, 0.5)
        return max(timeout, self.claims_resume - time.monotonic())

    def _wait(self, timeout):
        """Sleep until a task finishes, a notification or signal arrives, or ``timeout``."""
        if timeout is None:
            timeout = self.timers.seconds_to_next()
        if reports.changed:
            timeout = min(timeout, max(0.0, self.reports_due - time.monotonic()))
        timeout = self.stop_state.cap(timeout)
        if self.pool.active:
            timeout = min(timeout, self.stops.seconds_to_check())  # stop requests are looked for
        # A change in the database is watched only while a slot is free to run
        # what another process enqueued.
        watch = self.pool.running < self.pool.slots and not self.stop_state.stopping
        readable = self.wakeups.wait(timeout, [self.parent] if self.parent else [], watch)
        if self.parent and self.parent in readable:
            self._check_parent()  # end of file: the Django process that started this worker ended

    # -- database access -------------------------------------------------

    def ops_safe(self, func, *args):
        """Call ``func``; on a database error log, reconnect, back off and return False."""
        try:
            result = func(*args)
        except DatabaseError as exc:
            self.failures += 1
            self.ops.reset_connection()
            if self.failures == 1:
                # A dropped connection costs one immediate retry, not a pause.
                logger.warning("database error (%s); reconnecting", exc)
                return self.ops_safe(func, *args)
            delay = min(MAX_BACKOFF, 0.1 * 2 ** (self.failures - 2))
            hint = hint_for(exc)
            logger.error("database error (%s)%s; retrying in %.1fs", exc, hint, delay)
            self._wait(delay)
            return False
        self.failures = 0
        return result

    # -- periodic duties -------------------------------------------------

    def _maintain(self):
        for duty in self.timers.due(time.monotonic()):
            try:
                self.ops_safe(self._run_duty, duty)
            except Exception:
                logger.exception("worker duty %r failed; it runs again at its next interval", duty)

    def _run_duty(self, duty):
        # The clock is read as the duty runs, not once for the turn: an earlier
        # duty, or a first try of this one, may have waited out a database outage.
        getattr(self, f"_duty_{duty}")(timezone.now())

    def _duty_heartbeat(self, now):
        heartbeat(self, now)
        if self.pool.running:
            self.ops.renew_leases(self.worker_id, now + self.lease, list(self.pool.active))

    def _duty_recover(self, now):
        _, finished = recover(self.ops)  # each batch reads the clock anew
        if not finished:
            # The time budget ran out with leases still lapsed: the next pass
            # comes at the next loop turn, not half a lease later.
            self.timers.set_next("recover", time.monotonic())

    def _duty_admit(self, now):
        flow.admit(self.ops, now)  # HELD tasks now due, or whose slot a cancel, failure or recovery freed

    def _duty_prune(self, now):
        _, finished = pruning.prune_pass(self.ops, now)
        prune_stats(self.using, now)
        if not finished:
            # Expired rows are left after the time budget: the next pass comes
            # after as long again, not a clean interval later (tasks get the
            # other half of the time while pruning catches up).
            self.timers.set_next("prune", time.monotonic() + pruning.PRUNE_TIME_BUDGET)

    def _duty_schedule(self, now):
        wait = scheduling.tick(self.using, now)
        if wait is not None:
            self.timers.set_next("schedule", time.monotonic() + wait)

    def _check_stops(self):
        """Stop the tasks held here that were asked to stop (polled; at once on a notification)."""
        wakeups = self.wakeups
        if not self.pool.active or not self.stops.due(wakeups.stop_notified):
            return
        wakeups.stop_notified = False
        self.stops.checked(listening=wakeups.listener is not None)
        held = list(self.pool.active)
        asked = self.ops_safe(stop_requests, self.using, held)
        if asked:
            for task_id in self.stops.request(asked, held):
                logger.info("task #%s was asked to stop; stopping it", task_id, extra={"task_id": task_id})

    def _check_parent(self):
        """Read the link to the Django process that started this worker; stop once it has ended."""
        if self.parent and not self.parent.receive():
            self.parent.close()
            self.parent = None
            self._parent_gone()

    def _parent_gone(self):
        """Stop because the Django process this worker was started beside has ended."""
        if self.stop_state.deadline is None:
            logger.warning(
                "the Django process of worker %s has ended; stopping (running tasks get %ss)",
                self.worker_id,
                conf.ORPHAN_GRACE_SECONDS,
            )
        self.stop(grace=conf.ORPHAN_GRACE_SECONDS)

    def _close(self):
        if self.parent:
            self.parent.close()
        try:
            forget_worker(self)
        except DatabaseError:
            logger.debug("could not remove the worker row", exc_info=True)
        self.wakeups.close()


def run_worker(**kwargs):
    """Build a :class:`Worker` and run it; return its exit code."""
    return Worker(**kwargs).run()


__all__ = ["Worker", "run_worker"]
