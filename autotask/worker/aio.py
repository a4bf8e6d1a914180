"""Async tasks: one event loop per worker, in a thread of its own, running many at once.

A worker runs ``async def`` tasks as coroutines on its event loop, up to
``async_concurrency`` at once (AUTOTASK_ASYNC_CONCURRENCY), beside the pool
threads that run sync tasks.  The main thread hands it tasks already marked
started (:meth:`AsyncRunner.submit`); each runs in an asyncio task of its
own, created with a context of its own, so :func:`autotask.current_task` is
right per coroutine.  Its outcome goes through the same outcome channel as a
pool thread's, classified by the executor's :class:`~autotask.worker.executor.Run`.

The loop beats every :data:`BEAT_SECONDS`; a watchdog thread that finds the
beat late by more than :data:`STALL_SECONDS` logs a WARNING naming the task
that blocks the loop (a blocking call inside a coroutine stalls every other
async task of the worker).
"""

import asyncio
import contextvars
import inspect
import logging
import threading
import time

from asgiref.sync import SyncToAsync, sync_to_async

from .. import tracing
from ..conf import conf
from ..context import running
from ..definitions import registry
from ..exceptions import TaskStopped, TaskTimeout
from ..models import KIND_FRAMEWORK
from ..signals import task_finished, task_started
from .executor import Run, _release_task_connections

logger = logging.getLogger("autotask")

BEAT_SECONDS = 0.1  # the loop's heartbeat
STALL_SECONDS = 0.5  # a beat this late means a task blocked the loop: warned about
NAMED = 10  # tasks a stall warning names when it cannot tell which one blocks the loop


class AsyncRunner:
    """The worker's event loop and the async tasks on it.

    Main thread only: ``kinds`` (function name -> async or not), ``seen``
    (an async task was claimed: with one declared, the loop's free slots
    count in claims, :attr:`offered`) and the start of the loop
    (:meth:`submit`).  Guarded by ``lock``: ``in_flight``
    (tasks submitted whose outcome is not reported yet).  Loop thread only:
    ``tasks`` (each asyncio task -> its claimed task) and ``beat``, read by
    the watchdog thread (a float, and a dict copied under the GIL).
    ``last_start`` (monotonic time the loop last started a task) is written by
    the loop thread and read by the main thread (the hold limit).
    """

    def __init__(self, capacity, worker_id, outcomes, wakeups, stops=None):
        self.capacity = capacity
        self.stops = stops  # the worker's stops.Stops: a stop request reaches the task's CurrentTask
        self.worker_id = worker_id
        self.outcomes = outcomes
        self.wakeups = wakeups
        self.kinds = {}
        self.seen = False  # an async task was claimed here
        self.lock = threading.Lock()
        self.in_flight = 0
        self.tasks = {}
        self.beat = 0.0
        self.last_start = 0.0
        self.loop = None
        self.thread = None
        self.watchdog = None
        self.closing = threading.Event()

    # -- the main thread ---------------------------------------------------

    def takes(self, task):
        """True when ``task`` is an ``async def`` task: it runs on the loop."""
        kind = self.kinds.get(task.function)
        if kind is None:
            try:
                kind = registry.is_async(registry.callable_of(registry.get(task.function)))
            except Exception:  # noqa: BLE001 - the executor reports why it cannot run, on a pool thread
                kind = False
            self.kinds[task.function] = kind
            if kind:
                self.seen = True
        return kind

    @property
    def offered(self):
        """True once an async task was declared in this process or claimed: the loop's slots count in claims.

        Not before: a worker of sync tasks whose threads are busy claims
        nothing it could only hold.  An async task declared in a module the
        worker has not imported yet is met when a thread claims it.
        """
        return self.seen or registry.async_declared

    def free(self):
        """Slots of the loop no task holds."""
        return self.capacity - self.in_flight

    def submit(self, tasks):
        """Run ``tasks`` (marked started) on the loop, each as an asyncio task of its own."""
        if not tasks:
            return
        if self.loop is None:
            self._start_loop()
        with self.lock:
            self.in_flight += len(tasks)
        self.loop.call_soon_threadsafe(self._start_tasks, tasks)

    def close(self):
        """Stop the loop (nothing runs on it any more) and its threads."""
        self.closing.set()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.watchdog.join()

    def _start_loop(self):
        self.loop = asyncio.new_event_loop()
        self.beat = time.monotonic()
        started = threading.Event()
        self.thread = threading.Thread(
            target=self._run_loop, args=(started,), name="autotask-async", daemon=True
        )
        self.thread.start()
        started.wait()
        self.watchdog = threading.Thread(target=self._watch, name="autotask-async-watchdog", daemon=True)
        self.watchdog.start()

    # -- the loop thread ---------------------------------------------------

    def _run_loop(self, started):
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._beat)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _beat(self):
        self.beat = time.monotonic()
        self.loop.call_later(BEAT_SECONDS, self._beat)

    def _start_tasks(self, tasks):
        loop = self.loop
        for task in tasks:
            # A context of its own for each task: current_task() (and any
            # context variable the task sets) is that task's alone.
            handle = loop.create_task(self._run(task), context=contextvars.Context())
            self.tasks[handle] = task
            handle.add_done_callback(self._forget)
        self.last_start = time.monotonic()

    async def _run(self, task):
        clock, started_wall = time.monotonic(), time.time()
        try:
            if conf.TRACING:
                with tracing.processing(task, self.worker_id) as record:
                    outcome = record(await self._attempt(task)).outcome
            else:
                outcome = (await self._attempt(task)).outcome
        except BaseException:  # as a pool thread: the worker reports it, and goes on
            logger.exception("executing task %s crashed the executor", task.id)
            outcome = None
        finally:
            with self.lock:
                self.in_flight -= 1
        self.outcomes.report(task, outcome, time.monotonic() - clock, started_wall)
        if not self.wakeups.nudged:
            self.wakeups.nudge()  # collect the outcome; a slot is free for the next claim

    def _forget(self, handle):
        del self.tasks[handle]

    async def _attempt(self, task):
        """One attempt: prepared, awaited and finished by the executor's :class:`Run`."""
        stops = self.stops
        current = stops.begin(task, self.worker_id) if stops is not None else None
        try:
            return await self._attempt_with(task, Run(task, self.worker_id, False, current))
        finally:
            if stops is not None:
                stops.end(task.id)

    async def _attempt_with(self, task, run):
        # Receivers of task_started / task_finished (and a framework task's) are
        # sync code, which may use the ORM: they run where sync code runs, not
        # on the loop.  Without any, the attempt stays on the loop.
        hop = task.kind == KIND_FRAMEWORK or bool(task_started.receivers or task_finished.receivers)
        try:
            if hop:
                await sync_to_async(run.prepare, thread_sensitive=True)()
            else:
                run.prepare()
            current = run.current
            handle = asyncio.current_task()
            current.on_stop(lambda: self.loop.call_soon_threadsafe(handle.cancel))
            try:
                with running(current):
                    value = await self._call(run)
            except asyncio.CancelledError as exc:
                if not current.should_stop:
                    raise
                handle.uncancel()  # the stop is handled here: what follows may await
                raise TaskStopped(f"task {task.function} #{task.id} was asked to stop") from exc
            result = run.encode(value)
        except BaseException as exc:  # noqa: BLE001 - classified like a pool thread's
            if hop:
                attempt = await sync_to_async(_failed, thread_sensitive=True)(run, exc)
            else:
                attempt = run.failed(exc)
        else:
            if hop:
                attempt = await sync_to_async(run.succeeded, thread_sensitive=True)(result)
            else:
                attempt = run.succeeded(result)
        await _release_connections()
        return attempt

    @staticmethod
    async def _call(run):
        value = run.func(*run.args, **run.kwargs)
        if not inspect.isawaitable(value):
            return value  # no coroutine after all: it ran on the loop
        timeout = run.timeout
        if not timeout:
            return await value
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await value
        except TimeoutError as exc:
            if scope.expired():
                raise TaskTimeout(f"timed out after {timeout:g} seconds") from exc
            raise

    # -- the watchdog thread -----------------------------------------------

    def _watch(self):
        """Warn once per stall when the loop's beat is late by more than STALL_SECONDS."""
        reported = 0.0  # the beat a warning was logged for
        while not self.closing.wait(BEAT_SECONDS):
            beat = self.beat
            late = time.monotonic() - beat - BEAT_SECONDS
            if late <= STALL_SECONDS or beat == reported:
                continue
            reported = beat
            blocking = asyncio.current_task(self.loop) if self.loop.is_running() else None
            # The task running on the loop blocks it; between two tasks' steps, any of them may.
            names = self._names([blocking] if blocking in self.tasks else list(self.tasks))
            logger.warning(
                "the event loop of worker %s has been blocked for %.1fs by %s: a blocking call in an "
                "async task stalls every async task of the worker (await it, or wrap it in "
                "sync_to_async / asyncio.to_thread)",
                self.worker_id,
                late + BEAT_SECONDS,
                names or "no task (the loop itself)",
                extra={"worker_id": self.worker_id, "blocked_seconds": round(late + BEAT_SECONDS, 3)},
            )

    def _names(self, handles, most=NAMED):
        """The tasks of ``handles`` as words (the first ``most`` of them, then how many more)."""
        tasks = self.tasks
        found = [task for task in (tasks.get(handle) for handle in handles) if task is not None]
        names = ", ".join(f"task {task.function} #{task.id}" for task in found[:most])
        return f"{names} and {len(found) - most} more" if len(found) > most else names


def _failed(run, exc):
    """``run.failed(exc)`` with ``exc`` being handled, as in the except block of a pool thread.

    Receivers of a framework task's signals read the exception from
    ``sys.exc_info()``; its traceback stays the task's own.
    """
    trace = exc.__traceback__
    try:
        raise exc
    except BaseException:  # noqa: BLE001 - re-raised only to be the exception being handled
        exc.__traceback__ = trace
        return run.failed(exc)


async def _release_connections():
    """Close the connections async task code opened through sync_to_async, as a pool thread does.

    Django's async ORM calls run on asgiref's one thread for sync code (no
    outer async_to_sync here): its connections are that thread's, used by
    every async task in turn, and cleaned there after each task, between two
    calls of the others.  Nothing to do until some task has used that thread.
    """
    executor = SyncToAsync.single_thread_executor
    if getattr(executor, "_threads", True):
        await sync_to_async(_release_task_connections, thread_sensitive=True)()


__all__ = ["AsyncRunner"]
