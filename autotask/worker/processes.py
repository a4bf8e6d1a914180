"""Process mode: tasks run in child processes the worker starts ahead, recycles, kills and replaces.

A worker in process mode (``AUTOTASK_PROCESSES`` or ``run_autotask
--processes N``) runs every task in one of N child processes; in thread mode
only the tasks that need one do (``@delayed_task(isolated=True)``, and sync
tasks with a ``timeout`` or ``soft_timeout``).  Each pool thread of the worker
hands its task to an idle child through a pipe and waits for the outcome,
which the child builds with the same executor a thread uses.

The children are forked by multiprocessing's fork server (never by ``fork()``
from the threaded worker), which sets Django up once (``worker.forkserver``).
The worker kills a child that runs past the task's ``timeout`` or that does
not stop within :data:`STOP_GRACE` of a stop request, replaces a child that
died, and retires a child after ``AUTOTASK_CHILD_MAX_TASKS`` tasks or once its
memory (RSS) passes ``AUTOTASK_CHILD_MAX_MEMORY`` megabytes.  A child ends
with its worker, however the worker ends: the kernel signals it when the fork
server goes (``PR_SET_PDEATHSIG``), and a thread of the child watches a pipe
whose other end only the worker holds.
"""

import logging
import multiprocessing
import os
import signal
import threading
import time

from django.utils import timezone

from ..context import current_task
from ..definitions import registry
from ..exceptions import ChildProcessDied, SoftTimeLimitExceeded, TaskStopped, TimeLimitExceeded
from .executor import execute, failed_outside
from .parent import ENV_CHILD, PR_SET_PDEATHSIG

logger = logging.getLogger("autotask")

# Seconds a child has to stop its task after a stop request before it is killed.
STOP_GRACE = 0.3
# Seconds past an async task's timeout (its own asyncio timeout comes first) before its child is killed.
ASYNC_GRACE = 1.0
# Seconds a new child has to set itself up and say it is ready.
START_TIMEOUT = 60.0
# Longest a pool thread waits on its child without looking at the clock (limits, stops).
STEP = 0.25
STOP_SIGNAL = signal.SIGUSR1  # worker -> child: stop the task you run
MODULES = ["autotask.worker.forkserver"]  # what the fork server imports (sets Django up) before forking


def context():
    """The multiprocessing context of the children: the fork server, started once per worker."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(MODULES)
    return ctx


def routed(task, everything):
    """True when ``task`` runs in a child process: always in process mode; else when it needs one."""
    if everything:
        return True
    options = task.options
    if options.get("isolated"):
        return True
    if "timeout" in options or "soft_timeout" in options:
        return not _is_async(task)  # a sync task's limits hold only in a child
    return False


def _is_async(task):
    try:
        return registry.is_async(registry.callable_of(registry.get(task.function)))
    except Exception:  # noqa: BLE001 - the executor reports a task it cannot resolve
        return False


# -- the worker's side ---------------------------------------------------------


class Child:
    """One child process and the worker's end of its pipe.

    Used by one pool thread at a time (the one that took it from the pool);
    ``lock`` guards ``task_id`` against the main thread, which interrupts the
    child for a stop request (:meth:`interrupt`).
    """

    def __init__(self, ctx, lifeline, worker_id):
        self.conn, child_end = ctx.Pipe()
        # The id of the task to stop, written before the stop signal: the child
        # stops only that task (a late signal finds another id, or none).
        self.stop_id = ctx.Value("q", 0, lock=False)
        self.process = ctx.Process(
            target=child_main,
            args=(child_end, lifeline, self.stop_id, worker_id),
            name="autotask-child",
            daemon=True,
        )
        self.process.start()
        child_end.close()
        self.started = time.monotonic()
        self.ready = False
        self.tasks = 0  # tasks run so far
        self.rss = 0  # bytes, as the child last reported
        self.lock = threading.Lock()
        self.task_id = None  # the task it runs now

    @property
    def pid(self):
        return self.process.pid

    def is_ready(self):
        """True once the child said it is ready (read without waiting)."""
        if not self.ready:
            try:
                if self.conn.poll(0):
                    self.wait_ready()
            except ChildProcessDied:
                return True  # ready to be found dead by the thread that takes it
        return self.ready

    def wait_ready(self):
        """Wait for the child's "ready" (it has set Django up); raise ChildProcessDied if it never comes."""
        if self.ready:
            return
        left = START_TIMEOUT - (time.monotonic() - self.started)
        try:
            if self.conn.poll(max(0.0, left)):
                message = self.conn.recv()
                if message == "ready":
                    self.ready = True
                    return
                raise ChildProcessDied(f"a new child process could not start: {message}")
        except (EOFError, OSError):
            pass  # the pipe closed: the child died starting; death() below says how, and it is raised
        how = self.death()
        raise ChildProcessDied(f"a new child process (pid {self.pid}) could not start: {how}")

    def interrupt(self, task_id):
        """Ask the child to stop ``task_id`` (a signal), if that is still what it runs."""
        with self.lock:
            if self.task_id == task_id and self.process.exitcode is None:
                self.stop_id.value = task_id
                try:
                    os.kill(self.pid, STOP_SIGNAL)
                except ProcessLookupError:
                    pass  # the child has just ended: its task's outcome is reported as its death

    def kill(self):
        with self.lock:
            self.task_id = None
            if self.process.exitcode is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # already gone: what was wanted
        self.process.join(5)
        self.conn.close()

    def retire(self):
        """Let the child exit (it has no task): it reads None and leaves; see :meth:`gone`."""
        try:
            self.conn.send(None)
        except OSError:
            pass  # the child is gone already: nothing left to tell it
        self.conn.close()

    def gone(self, wait=0.0):
        """After :meth:`retire`: True once the child has exited (killed after ``wait`` if not)."""
        self.process.join(wait)
        if self.process.exitcode is None:
            if not wait:
                return False
            self.kill()
        return True

    def death(self):
        """How the child ended, in words (killing it first if it is alive but unreachable)."""
        self.process.join(2)
        code = self.process.exitcode
        if code is None:
            self.kill()
            return "it stopped answering and was killed"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            cause = {
                "SIGKILL": " (killed from outside the worker, e.g. by the kernel's out-of-memory killer)",
                "SIGSEGV": " (a segmentation fault, e.g. in a C extension)",
                "SIGABRT": " (it aborted)",
                "SIGBUS": " (a bus error)",
            }.get(name, "")
            return f"it was killed by {name}{cause}"
        return f"it exited with code {code} (os._exit() or a crash)"


class ChildPool:
    """The child processes of a worker: idle ones, and how many there are.

    ``lock`` guards ``idle`` and ``count``; a child taken from ``idle`` is its
    pool thread's until given back.  ``size`` is the worker's concurrency, so
    a pool thread never waits for a child: it takes an idle one or starts one.
    """

    def __init__(self, size, worker_id, everything=False, max_tasks=None, max_memory=None):
        self.size = size
        self.worker_id = worker_id
        self.everything = everything  # process mode: every task runs in a child
        self.max_tasks = max_tasks
        self.max_rss = None if max_memory is None else max_memory * 1024 * 1024
        self.lock = threading.Lock()
        self.setup_lock = threading.Lock()
        self.idle = []
        self.count = 0
        self.retiring = []  # children told to leave, not seen gone yet
        self.ctx = None
        self.lifeline = None  # (reader, writer): the children watch the reader; only this process writes
        self.stats = {"started": 0, "recycled": 0, "died": 0, "killed": 0}

    # -- set-up and end ----------------------------------------------------

    def _start_child(self):
        with self.setup_lock:  # pool threads may start the first children at once
            self._start_fork_server()
        self.stats["started"] += 1
        return Child(self.ctx, self.lifeline[0], self.worker_id)

    def _start_fork_server(self):
        if self.ctx is None:
            self.ctx = context()
            self.lifeline = self.ctx.Pipe(duplex=False)
            # Only the fork server's environment: it and every child it forks
            # know they are a worker's children (no worker beside them).
            os.environ[ENV_CHILD] = "1"
            try:
                from multiprocessing import forkserver

                forkserver.ensure_running()
            finally:
                os.environ.pop(ENV_CHILD, None)

    def start(self):
        """Start every child now (process mode), and wait until they are ready."""
        children = []
        for _ in range(self.size):
            with self.lock:
                self.count += 1
            children.append(self._start_child())
        for child in children:
            try:
                child.wait_ready()
            except ChildProcessDied:
                logger.exception("a child process of worker %s did not start", self.worker_id)
                self._forget(child)
                continue
            with self.lock:
                self.idle.append(child)
        logger.info(
            "worker %s started %s child processes (pids %s)",
            self.worker_id,
            len(self.idle),
            ", ".join(str(child.pid) for child in self.idle),
        )

    def close(self):
        """Let the idle children exit; kill any other (the worker is leaving)."""
        with self.lock:
            idle, self.idle = self.idle, []
            retiring, self.retiring = self.retiring + idle, []
        for child in idle:
            child.retire()
        for child in retiring:
            child.gone(wait=2.0)
        if self.lifeline is not None:
            for end in self.lifeline:
                end.close()
            self.lifeline = None

    def pids(self):
        with self.lock:
            return [child.pid for child in self.idle]

    # -- pool threads ------------------------------------------------------

    def routes(self, task):
        return routed(task, self.everything)

    def run(self, task, current):
        """Run ``task`` in a child; return its Outcome (never raises, like ``execute``)."""
        started_at, clock = timezone.now(), time.monotonic()
        if current.should_stop:  # asked before it started: no child needed to say so
            exc = TaskStopped(f"task {task.function} #{task.id} was asked to stop before it started")
            return failed_outside(task, self.worker_id, exc, started_at, 0.0, stopped=True)
        try:
            child = self._take()
        except ChildProcessDied:
            logger.exception("a child process of worker %s did not start; starting another", self.worker_id)
            try:
                child = self._take()
            except ChildProcessDied as exc:  # twice: the cause is lasting, and said on the task
                return failed_outside(task, self.worker_id, exc, started_at, time.monotonic() - clock)
        keep = False
        try:
            outcome, keep = self._run_in(child, task, current, started_at, clock)
            return outcome
        finally:
            if keep:
                with self.lock:
                    self.idle.append(child)
            else:
                self._forget(child)

    def _take(self):
        with self.lock:
            # A ready child first (the last used: warm); else one still starting.
            child = next((c for c in reversed(self.idle) if c.is_ready()), None)
            if child is not None:
                self.idle.remove(child)
            elif self.idle:
                child = self.idle.pop(0)
            else:
                self.count += 1
        try:
            if child is None:
                child = self._start_child()
            child.wait_ready()  # a replacement may still be setting itself up
        except BaseException:
            with self.lock:
                self.count -= 1
            raise
        return child

    def _forget(self, child):
        """``child`` is gone (or going): count it out, start its replacement ahead in process mode."""
        with self.lock:
            self.count -= 1
            replace = self.everything and self.count < self.size
            if replace:
                self.count += 1
        if replace:
            try:
                fresh = self._start_child()  # it sets itself up while this thread reports
            except Exception:
                logger.exception("worker %s could not start a child process", self.worker_id)
                with self.lock:
                    self.count -= 1
                return
            with self.lock:
                self.idle.append(fresh)

    def _run_in(self, child, task, current, started_at, clock):
        """Run ``task`` in ``child``; return (outcome, whether the child can run another task)."""
        with child.lock:
            child.task_id = task.id
        stopping = []  # monotonic deadline of a stop request, once asked

        def stop():
            stopping.append(time.monotonic() + STOP_GRACE)
            child.interrupt(task.id)

        timeout = task.options.get("timeout")
        hard = None
        if timeout:  # from now: the child's start does not count against the task
            hard = time.monotonic() + timeout + (ASYNC_GRACE if _is_async(task) else 0.0)
        try:
            child.conn.send((task, self.worker_id))
        except OSError:
            how = child.death()
            return self._lost(child, task, current, started_at, clock, how), False
        current.on_stop(stop)
        while True:
            now = time.monotonic()
            step = STEP
            for deadline in (hard, stopping[0] if stopping else None):
                if deadline is not None:
                    step = min(step, max(0.0, deadline - now))
            try:
                answered = child.conn.poll(step)
                reply = child.conn.recv() if answered else None
            except (EOFError, OSError):
                return self._lost(child, task, current, started_at, clock, child.death()), False
            if answered:
                outcome, child.rss = reply
                child.tasks += 1
                with child.lock:
                    child.task_id = None
                if self._worn(child):
                    self.stats["recycled"] += 1
                    child.retire()  # it exits on its own; the fork server, its parent, reaps it
                    with self.lock:
                        self.retiring = [c for c in self.retiring if not c.gone()]
                        self.retiring.append(child)
                    return outcome, False
                return outcome, True
            now = time.monotonic()
            if stopping and now >= stopping[0]:
                self.stats["killed"] += 1
                child.kill()
                exc = TaskStopped(
                    f"the task did not stop within {STOP_GRACE:g}s of the request: its child process "
                    f"(pid {child.pid}) was killed"
                )
                return failed_outside(task, self.worker_id, exc, started_at, now - clock, stopped=True), False
            if hard is not None and now >= hard:
                self.stats["killed"] += 1
                child.kill()
                exc = TimeLimitExceeded(
                    f"the task ran past its time limit (timeout={timeout:g}s): its child process "
                    f"(pid {child.pid}) was killed"
                )
                logger.warning(
                    "task %s #%s ran past its time limit (timeout=%gs); child process %s killed",
                    task.function,
                    task.id,
                    timeout,
                    child.pid,
                )
                return failed_outside(task, self.worker_id, exc, started_at, now - clock), False

    def _lost(self, child, task, current, started_at, clock, how):
        self.stats["died"] += 1
        with child.lock:
            child.task_id = None
        exc = ChildProcessDied(f"the child process (pid {child.pid}) running the task died: {how}")
        logger.error("task %s #%s: %s", task.function, task.id, exc)
        return failed_outside(
            task, self.worker_id, exc, started_at, time.monotonic() - clock, stopped=current.should_stop
        )

    def _worn(self, child):
        if self.max_tasks is not None and child.tasks >= self.max_tasks:
            logger.info("child process %s ran %s tasks: recycled", child.pid, child.tasks)
            return True
        if self.max_rss is not None and child.rss > self.max_rss:
            logger.info(
                "child process %s uses %.0f MB (limit %.0f MB): recycled",
                child.pid,
                child.rss / 2**20,
                self.max_rss / 2**20,
            )
            return True
        return False


# -- the child's side ----------------------------------------------------------


class _Running:
    """What the child runs now (main thread; read by its signal handlers)."""

    current = None  # the attempt's CurrentTask
    stop_id = None  # shared with the worker: the id of the task it asked to stop
    raises = False  # a stop raises TaskStopped in the task's code (a sync task); else on_stop acts


def child_main(conn, lifeline, stop_id, worker_id):
    """The child process: set Django up, then run the tasks the worker sends until told to leave."""
    os.environ[ENV_CHILD] = "1"
    _Running.stop_id = stop_id
    _die_with_worker(lifeline)
    # Ctrl-C, and a SIGTERM sent to the whole group (systemd, a terminal), reach the
    # worker too, which decides: a graceful stop lets this child finish its task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(STOP_SIGNAL, _on_stop_signal)
    signal.signal(signal.SIGALRM, _on_soft_limit)
    try:
        import django

        django.setup()  # at once when the fork server has set it up
    except Exception as exc:  # noqa: BLE001 - said to the worker, which logs it
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    try:
        conn.send("ready")
    except OSError:
        return  # retired (or the worker gone) before it was ever used
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        if message is None:
            return  # retired
        task, worker_id = message
        outcome = _run_task(task, worker_id)
        try:
            conn.send((outcome, _rss()))
        except OSError:
            return


def _run_task(task, worker_id):
    from ..context import CurrentTask

    current = CurrentTask.of(task, worker_id)
    _Running.raises = not _is_async(task)
    _Running.current = current
    if _Running.stop_id.value == task.id:
        current.request_stop()  # asked before it started here: it ends CANCELLED without running
    soft = task.options.get("soft_timeout")
    if soft:
        signal.setitimer(signal.ITIMER_REAL, soft)
    try:
        return execute(task, worker_id, current=current)
    finally:
        if soft:
            signal.setitimer(signal.ITIMER_REAL, 0)
        _Running.current = None


def _on_stop_signal(signum, frame):
    current = _Running.current
    if current is None or _Running.stop_id.value != current.id:
        return  # between tasks, or meant for a task that has ended
    current.request_stop()  # an async task's runner cancels it
    if _Running.raises and current_task() is current:
        raise TaskStopped(f"task {current.name} #{current.id} was asked to stop")


def _on_soft_limit(signum, frame):
    current = _Running.current
    if current is not None and current_task() is current:
        soft = current.options.get("soft_timeout")
        raise SoftTimeLimitExceeded(f"the task ran past its soft time limit (soft_timeout={soft:g}s)")


def _die_with_worker(lifeline):
    """End this child when the worker ends, however it ends."""
    # The fork server is this process's parent; it leaves when the worker goes.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the lifeline below

    def watch():
        try:
            lifeline.poll(None)  # readable only at end of file: nobody ever writes
        except (EOFError, OSError):
            pass  # the worker's end closed: the same news as end of file, handled below
        os._exit(1)

    threading.Thread(target=watch, name="autotask-lifeline", daemon=True).start()


def _rss():
    """This process's resident memory in bytes (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


__all__ = ["ChildPool", "routed"]
