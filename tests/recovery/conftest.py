"""Fault injection with real processes: process control, database faults, outcome checks."""

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, connections

from autotask.models import TaskQueue
from autotask.task import DONE, RUNNING, STATUS_NAMES
from tests.conftest import ROOT, records, wait_for

# Timings for the processes these tests start, so that every fault heals in seconds: a
# lease of 2 s is renewed every 0.67 s and recovered by any worker within 1 s of lapsing.
LEASE_SECONDS = 2.0
FAST_ENV = {
    "AUTOTASK_TEST_LEASE_SECONDS": str(LEASE_SECONDS),
    "AUTOTASK_TEST_WORKER_MONITOR_INTERVALL": "0.2",
    "AUTOTASK_TEST_IDLE_TIME": "0.2",
}
START_TIMEOUT = 60.0  # seconds: a Django process starting on a busy two-core machine
DJANGO_SCRIPT = Path(__file__).with_name("django_process.py")
WORKER_LOST = "autotask.exceptions.WorkerLost"  # the history entry of an attempt recovered from a lost worker


# -- processes ------------------------------------------------------------------


def proc_stat(pid):
    """Return (state, ppid) of ``pid`` from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid):
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children(pid):
    """Return the live child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def descendants(pid):
    result = []
    for child in children(pid):
        result += [child, *descendants(child)]
    return result


def worker_children(pid):
    """Return the ``run_autotask`` processes started beside process ``pid``."""
    result = []
    for child in children(pid):
        try:
            if b"run_autotask" in Path(f"/proc/{child}/cmdline").read_bytes():
                result.append(child)
        except OSError:
            pass
    return result


def started_beside(pid):
    """Return every live process that a supervisor in process ``pid`` started, orphans included.

    Found by the environment a supervisor gives its worker, so a worker whose
    Django process died (and which init adopted) is found too.
    """
    marker = f"AUTOTASK_SUPERVISOR_PID={pid}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0") and alive(int(entry)):
                found.append(int(entry))
    return found


def supervised_worker(pid, timeout=START_TIMEOUT, other_than=()):
    """Wait for the worker beside process ``pid`` (a new one if ``other_than`` names old ones)."""
    found = wait_for(
        lambda: [w for w in worker_children(pid) if w not in other_than],
        timeout=timeout,
        message=f"a worker beside process {pid}",
    )
    assert len(found) == 1, f"process {pid} has {len(found)} workers: {found}"
    return found[0]


class Proc:
    """A process the test started; its output goes to a file the test can read at any time."""

    def __init__(self, argv, env, log_path):
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        return Path(self.log_path).read_text(errors="replace")

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=30):
        """Wait for the process to exit; return its exit code."""
        return self.proc.wait(timeout)

    def wait_output(self, pattern, timeout=START_TIMEOUT):
        """Wait until the output matches ``pattern``; return the match."""
        regex = re.compile(pattern)
        return wait_for(lambda: regex.search(self.output()), timeout=timeout, message=f"output {pattern!r}")

    def kill_all(self):
        """SIGKILL this process and everything it started, orphaned workers included."""
        family = [*descendants(self.pid), self.pid]
        for pid in [*(worker for member in family for worker in started_beside(member)), *family]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(30)


def base_env(extra=None):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "AUTOTASK_TEST_DB_NAME": connection.settings_dict["NAME"],
        "PYTHONPATH": str(ROOT),
        **FAST_ENV,
        **(extra or {}),
    }


@pytest.fixture(name="spawn")
def spawn_fixture(transactional_db, tmp_path):
    """Start processes: ``spawn.worker(*args)``, ``spawn.django()``, ``spawn(argv)``.

    Everything they started is killed at teardown, before the database is flushed;
    a failing test shows their output.
    """
    started = []

    def start(argv, env=None, name="proc"):
        proc = Proc(argv, base_env(env), tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc

    start.worker = lambda *args, env=None: start(
        [sys.executable, "-m", "django", "run_autotask", *args], env, "worker"
    )
    start.django = lambda env=None: start([sys.executable, str(DJANGO_SCRIPT)], env, "django")
    start.started = started
    yield start
    for proc in started:
        proc.kill_all()
    for proc in started:
        print(f"--- {' '.join(map(str, proc.argv))} (pid {proc.pid}) ---\n{proc.output()[-4000:]}")


# -- outcomes -------------------------------------------------------------------


def status_counts(ids):
    rows = TaskQueue.objects.filter(pk__in=ids).values_list("status", flat=True)
    return dict(collections.Counter(STATUS_NAMES.get(s, s) for s in rows))


def wait_all_done(handles, timeout=90.0):
    ids = [h.pk for h in handles]

    def done():
        return TaskQueue.objects.filter(pk__in=ids, status=DONE).count() == len(ids)

    try:
        wait_for(done, timeout=timeout, interval=0.1, message="every task to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; statuses: {status_counts(ids)}") from None


def _wait_count(handles, status, count, timeout, interval, what):
    ids = [h.pk for h in handles]
    wait_for(
        lambda: TaskQueue.objects.filter(pk__in=ids, status=status).count() >= count,
        timeout=timeout,
        interval=interval,
        message=f"{count} tasks {what}",
    )


def wait_some_done(handles, count, timeout=60.0):
    """Wait until at least ``count`` of ``handles`` are DONE (progress before a fault)."""
    _wait_count(handles, DONE, count, timeout, 0.05, "done")


def wait_running(handles, count=1, timeout=60.0):
    _wait_count(handles, RUNNING, count, timeout, 0.02, "running")


def check_outcome(prefix, handles):
    """Every task DONE, every key recorded; only attempts cut off by a fault ran again.

    ``handles[i]`` records ``f"{prefix}{i}"``.  A task may have run more than
    once only if the attempts it lost were recovered from a worker that died
    or lost its lease (a WorkerLost entry in its history for each).  Return the
    keys that ran more than once.
    """
    wait_all_done(handles)
    keys = [f"{prefix}{i}" for i in range(len(handles))]
    counts = collections.Counter(records(prefix))
    assert not [k for k in keys if counts[k] == 0], "tasks lost"
    assert set(counts) <= set(keys), f"unexpected records: {set(counts) - set(keys)}"
    rows = TaskQueue.objects.filter(pk__in=[h.pk for h in handles]).values_list("pk", "attempts", "history")
    by_pk = {pk: (attempts, history) for pk, attempts, history in rows}
    twice = {}
    for handle, key in zip(handles, keys, strict=True):
        attempts, history = by_pk[handle.pk]
        lost = sum(1 for entry in history if entry.get("exception") == WORKER_LOST)
        assert counts[key] <= attempts, f"{key} ran {counts[key]} times in {attempts} attempts"
        assert counts[key] <= 1 + lost, (
            f"{key} ran {counts[key]} times, but only {lost} attempts were cut off"
        )
        if counts[key] > 1:
            twice[key] = counts[key]
    return twice


# -- database faults --------------------------------------------------------------


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL fault")


def terminate_backends():
    """Terminate every session on the test database except the test's own; return how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def listen_sessions():
    """Return the backend pids LISTENing for tasks on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
        )
        return {row[0] for row in cursor.fetchall()}


def _pg_ready():
    settings = connection.settings_dict
    command = ["pg_isready", "-q", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432)]
    return subprocess.run(command, check=False).returncode == 0


def _pg_ctl(action):
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        timeout=120,
        capture_output=True,
    )


@pytest.fixture
def restart_postgresql():
    """Restart the local PostgreSQL server; it is running again at teardown, whatever happened."""
    needs_postgresql()
    if not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        pytest.skip("needs a local PostgreSQL cluster managed by pg_ctlcluster")

    def restart():
        _pg_ctl("restart")
        wait_for(_pg_ready, timeout=60, interval=0.2, message="PostgreSQL to accept connections")
        connections.close_all()  # the test's own session did not survive the restart

    yield restart
    if not _pg_ready():
        _pg_ctl("start")
    wait_for(_pg_ready, timeout=60, interval=0.2, message="PostgreSQL to accept connections")
    connections.close_all()
