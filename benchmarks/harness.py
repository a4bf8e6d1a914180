"""Shared machinery: the benchmark database, worker processes, clocks and statistics."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01  # how often completion is polled: bounds the error on a run's end time
READY_TIMEOUT = 30.0  # seconds a worker process may take to start
PREPARED = "prepared"  # the database alias (PostgreSQL) on which psycopg prepares statements
POOLED = "pooled"  # the database alias (PostgreSQL) that reaches the server through PgBouncer
RUN_TIMEOUT = 600.0  # seconds any single measured run may take before it is declared stuck

# Polled while a run goes on, so it must cost next to nothing: each subquery walks
# a partial index in its own order (the planner would otherwise pick a
# sequential scan, which walks every finished row on each poll and slows the
# run it measures; EXISTS would drop the ORDER BY), and COALESCE evaluates the
# second only once nothing is waiting.
UNFINISHED_SQL = (
    "SELECT COALESCE((SELECT 1 FROM autotask_taskqueue WHERE status = 1{extra} "
    "ORDER BY priority DESC, scheduled_at, id LIMIT 1), "
    "(SELECT 1 FROM autotask_taskqueue WHERE status = 2{extra} ORDER BY lease_expires_at LIMIT 1), 0)"
)


def configure(db):
    """Point Django at the benchmark database for ``db``, create it, and migrate."""
    os.environ["BENCH_DB"] = db
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    from benchmarks import settings

    if db == "postgresql":
        _create_pg_database(settings.DATABASES["default"])
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(settings.SQLITE_PATH + suffix).unlink(missing_ok=True)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _create_pg_database(params):
    """Create the benchmark database afresh: no bloat or schema left by an earlier run."""
    import psycopg

    dsn = pg_dsn(params, dbname="postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{params["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{params["NAME"]}"')


def pg_dsn(params=None, dbname=None):
    if params is None:
        from django.conf import settings

        params = settings.DATABASES["default"]
    parts = {
        "host": params["HOST"],
        "port": params["PORT"],
        "user": params["USER"],
        "password": params["PASSWORD"],
        "dbname": dbname or params["NAME"],
    }
    return " ".join(f"{key}='{value}'" for key, value in parts.items() if value)


def vendor():
    from django.db import connection

    return connection.vendor


def execute(sql, params=None):
    """Run one statement on Django's connection (autocommit); return all rows, if any."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall() if cursor.description else None


def reset_tasks():
    """Empty the task table between runs so that each starts from the same state."""
    if vendor() == "postgresql":
        # No ANALYZE of the empty table: statistics saying "empty" would make
        # the planner choose sequential scans for the rows about to arrive.
        execute("TRUNCATE autotask_taskqueue")
    else:
        execute("DELETE FROM autotask_taskqueue")


def unfinished_tasks():
    """Return True while any task row is waiting or running."""
    return bool(execute(UNFINISHED_SQL.format(extra=""))[0][0])


def wait_until(predicate, timeout=RUN_TIMEOUT, interval=POLL_SECONDS, what="the run"):
    """Poll ``predicate`` until true; return the wall-clock time (time.time()) it was seen true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish within {timeout:.0f} s")
        time.sleep(interval)
    return time.time()


def count_by_status():
    rows = execute("SELECT status, COUNT(*) FROM autotask_taskqueue GROUP BY status")
    return {status: count for status, count in rows}


# -- processes --------------------------------------------------------------


class Processes:
    """Worker processes (autotask or plain-SQL) started for one measurement."""

    def __init__(self):
        self.procs = []
        self.logs = []

    def start(self, argv, env=None):
        # Closed and removed by stop(): the output outlives this call.
        log = tempfile.NamedTemporaryFile("w+", prefix="autotask-bench-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    @property
    def pids(self):
        return [proc.pid for proc in self.procs]

    def signal(self, signum):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def check_alive(self):
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited early ({proc.returncode}):\n{read_log(log)}")

    def stop(self):
        """Stop every process (SIGTERM, then SIGKILL); return their combined output."""
        self.signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        output = "".join(read_log(log) for log in self.logs)
        for log in self.logs:
            log.close()
            os.unlink(log.name)
        self.procs, self.logs = [], []
        return output

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def logs_containing(procs, text):
    return sum(text in read_log(log) for log in procs.logs)


def read_log(log):
    log.flush()
    return Path(log.name).read_text(errors="replace")


def start_autotask_workers(procs, count, *args, env=None):
    """Start ``count`` run_autotask processes and return once each is idle and listening."""
    for _ in range(count):
        procs.start([sys.executable, "-m", "django", "run_autotask", *args], env=env)
    if vendor() == "postgresql":
        wait_ready(procs, lambda: listeners('LISTEN "autotask_taskqueue"') >= count)
    else:
        wait_ready(procs, lambda: execute("SELECT COUNT(*) FROM autotask_worker")[0][0] >= count)


def require_pgbouncer():
    """Fail early, saying how to start one, when no PgBouncer answers at the pooled alias."""
    from django.conf import settings

    config = settings.DATABASES[POOLED]
    try:
        socket.create_connection((config["HOST"], int(config["PORT"])), timeout=2).close()
    except OSError as exc:
        raise RuntimeError(
            f"no PgBouncer at {config['HOST']}:{config['PORT']} ({exc}): run "
            "scripts/prepare_test_machine.sh, or point BENCH_PGBOUNCER at one in transaction mode"
        ) from exc


def listeners(statement):
    """Return how many idle connections to this database last ran ``statement``."""
    sql = (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle' AND query = %s"
    )
    return execute(sql, [statement])[0][0]


def wait_ready(procs, probe):
    """Wait until ``probe()`` says the workers are up, then let their start-up duties pass."""

    def ready():
        procs.check_alive()
        return probe()

    wait_until(ready, READY_TIMEOUT, 0.05, "worker start-up")
    # Start-up duties (recovery, pruning, heartbeat) run in the first loop turn:
    # let them finish so that the measurement starts with idle workers.
    time.sleep(0.5)


# -- measurements -----------------------------------------------------------


def percentile(values, fraction):
    """Nearest-rank percentile of ``values`` (fraction in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values):
    return percentile(values, 0.5)


def cpu_seconds(pids):
    """CPU time (user + system) the processes ``pids`` have used so far, in seconds (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # ended meanwhile: its time is lost to the figure, and said so by a lower one
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def backend_pids():
    """The PostgreSQL server processes serving this database's connections (same machine); SQLite: none."""
    if vendor() != "postgresql":
        return []
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend'"
    )
    return [row[0] for row in execute(sql)]


class CpuClock:
    """CPU time spent by worker processes and by the database server's processes for them."""

    def __init__(self, procs):
        self.workers = list(procs.pids)
        self.backends = backend_pids()
        self.start = (cpu_seconds(self.workers), cpu_seconds(self.backends))

    def spent(self):
        """(worker seconds, server seconds) since this clock started."""
        return (
            cpu_seconds(self.workers) - self.start[0],
            cpu_seconds(self.backends) - self.start[1],
        )


def rss_kib(pid):
    """Resident memory of process ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class StampReceiver:
    """A UDP socket on localhost that task functions report their start instant to."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def receive(self, timeout=15.0):
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(64)
        return float(data)

    def close(self):
        self.sock.close()
