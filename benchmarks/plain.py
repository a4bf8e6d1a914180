"""The plain-SQL reference: the same work done with the database driver directly.

A minimal queue table and the loops anyone would write by hand: enqueue with
an INSERT (and, on PostgreSQL, a NOTIFY in the same statement); workers that
claim with one UPDATE ... RETURNING (SKIP LOCKED on PostgreSQL), run the
task and mark it done -- one row per statement, or ``--batch`` rows per claim
and per completion.  It has none of autotask's features (leases, retries,
results, history, queues, priorities); it shows what the database allows.

Run as ``python -m benchmarks.plain worker --db postgresql --dsn ... --batch 1``.
"""

import argparse
import os
import select
import signal
import socket
import sqlite3
import time
from datetime import UTC, datetime

CHANNEL = "bench_plain"
NOOP_ARGS = '{"args":[],"kwargs":{}}'  # the same payload autotask stores for a call without arguments
IDLE_SECONDS = 10.0  # the safety poll of an idle reference worker (autotask's default idle time)

PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_plain ("
    " id bigserial PRIMARY KEY,"
    " status smallint NOT NULL DEFAULT 1,"
    " args text NOT NULL DEFAULT '',"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " started_at timestamptz,"
    " finished_at timestamptz)",
    "CREATE INDEX IF NOT EXISTS bench_plain_claim ON bench_plain (id) WHERE status = 1",
)
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_plain ("
    " id integer PRIMARY KEY AUTOINCREMENT,"
    " status integer NOT NULL DEFAULT 1,"
    " args text NOT NULL DEFAULT '',"
    " created_at text NOT NULL,"
    " started_at text,"
    " finished_at text)",
    "CREATE INDEX IF NOT EXISTS bench_plain_claim ON bench_plain (id) WHERE status = 1",
)
# Cheap enough to poll during a run: the first subquery walks the claim index;
# the second (no index) only runs once nothing is waiting any more.
UNFINISHED_SQL = (
    "SELECT COALESCE((SELECT 1 FROM bench_plain WHERE status = 1 ORDER BY id LIMIT 1), "
    "(SELECT 1 FROM bench_plain WHERE status = 2 LIMIT 1), 0)"
)


def _now_text():
    return datetime.now(UTC).isoformat()


class PlainTarget:
    """The reference, driven from the benchmark process (the side that enqueues)."""

    name = "plain SQL"

    def __init__(self, db, batch=1):
        from benchmarks import harness

        self.db = db
        self.batch = batch
        self.harness = harness
        if db == "postgresql":
            import psycopg

            self.dsn = harness.pg_dsn()
            self.conn = psycopg.connect(self.dsn, autocommit=True)
            schema = PG_SCHEMA
        else:
            from django.conf import settings

            self.path = settings.DATABASES["default"]["NAME"]
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=20)
            schema = SQLITE_SCHEMA
        for statement in schema:
            self.conn.execute(statement)

    def with_batch(self, batch):
        self.batch = batch
        return self

    def close(self):
        self.conn.close()

    def reset(self):
        if self.db == "postgresql":
            self.conn.execute("TRUNCATE bench_plain RESTART IDENTITY")
        else:
            self.conn.execute("DELETE FROM bench_plain")

    def unfinished(self):
        row = self.conn.execute(UNFINISHED_SQL).fetchone()
        return bool(row[0])

    def counts(self):
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM bench_plain GROUP BY status").fetchall())

    def start_workers(self, procs, count):
        import sys

        argv = [
            sys.executable,
            "-m",
            "benchmarks.plain",
            "worker",
            "--db",
            self.db,
            "--batch",
            str(self.batch),
        ]
        argv += ["--dsn", self.dsn] if self.db == "postgresql" else ["--path", self.path]
        for _ in range(count):
            procs.start(argv)
        if self.db == "postgresql":
            self.harness.wait_ready(procs, lambda: self.harness.listeners(f"LISTEN {CHANNEL}") >= count)
        else:
            self.harness.wait_ready(procs, lambda: self.harness.logs_containing(procs, "ready") >= count)

    # -- enqueue -------------------------------------------------------------

    def enqueue_one(self, count, args=NOOP_ARGS, prepare=None):
        """Insert ``count`` rows, each in its own transaction (autocommit).

        On PostgreSQL psycopg prepares the statement from its sixth run, as it
        does by default; ``prepare=False`` never prepares it, as on a Django
        connection with Django's default settings.
        """
        if self.db == "postgresql":
            # One round trip: the NOTIFY rides in the INSERT's statement.
            sql = (
                "WITH t AS (INSERT INTO bench_plain (args) VALUES (%s) RETURNING id) "
                f"SELECT pg_notify('{CHANNEL}', '') FROM t"
            )
            for _ in range(count):
                self.conn.execute(sql, [args], prepare=prepare)
        else:
            for _ in range(count):
                self.conn.execute(
                    "INSERT INTO bench_plain (args, created_at) VALUES (?, ?)", [args, _now_text()]
                )

    def enqueue_bulk(self, count):
        """Insert ``count`` rows in one transaction."""
        if self.db == "postgresql":
            with self.conn.transaction():
                self.conn.execute(
                    "INSERT INTO bench_plain (args) SELECT unnest(%s::text[])", [[NOOP_ARGS] * count]
                )
                self.conn.execute(f"NOTIFY {CHANNEL}")
        else:
            now = _now_text()
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT INTO bench_plain (args, created_at) VALUES (?, ?)", [(NOOP_ARGS, now)] * count
            )
            self.conn.execute("COMMIT")

    def enqueue_stamp(self, port):
        self.enqueue_one(1, args=str(port))


# -- the reference worker (a process of its own) -----------------------------


class _Wakeup:
    """SIGUSR1 wakes the worker (the benchmark's nudge where there is no NOTIFY)."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        signal.set_wakeup_fd(self.w)
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)

    def drain(self):
        try:
            while os.read(self.r, 4096):
                pass
        except BlockingIOError:
            pass


class _Runner:
    """Run claimed rows: nothing, except reporting the start instant of a stamp row."""

    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def run(self, rows):
        for _id, args in rows:
            if args.isdigit():  # a pickup probe: args is the benchmark's UDP port
                self.udp.sendto(repr(time.time()).encode(), ("127.0.0.1", int(args)))


def pg_worker(dsn, batch):
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    listen = psycopg.connect(dsn, autocommit=True)
    listen.execute(f"LISTEN {CHANNEL}")
    wake = _Wakeup()
    runner = _Runner()
    claim = (
        "UPDATE bench_plain SET status = 2, started_at = now() WHERE id IN ("
        "SELECT id FROM bench_plain WHERE status = 1 ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
        "RETURNING id, args"
    )
    done_one = "UPDATE bench_plain SET status = 3, finished_at = now() WHERE id = %s"
    done_many = "UPDATE bench_plain SET status = 3, finished_at = now() WHERE id = ANY(%s)"
    while True:
        rows = conn.execute(claim, [batch]).fetchall()
        if rows:
            runner.run(rows)
            if len(rows) == 1:
                conn.execute(done_one, [rows[0][0]])
            else:
                conn.execute(done_many, [[row[0] for row in rows]])
            continue
        select.select([listen.fileno(), wake.r], [], [], IDLE_SECONDS)
        wake.drain()
        listen.pgconn.consume_input()
        while listen.pgconn.notifies() is not None:
            pass


def sqlite_worker(path, batch):
    conn = sqlite3.connect(path, isolation_level=None, timeout=20)
    wake = _Wakeup()
    runner = _Runner()
    print("ready", flush=True)
    claim = (
        "UPDATE bench_plain SET status = 2, started_at = ? WHERE id IN ("
        "SELECT id FROM bench_plain WHERE status = 1 ORDER BY id LIMIT ?) RETURNING id, args"
    )
    while True:
        rows = conn.execute(claim, [_now_text(), batch]).fetchall()
        if rows:
            runner.run(rows)
            ids = [row[0] for row in rows]
            marks = ", ".join("?" * len(ids))
            conn.execute(
                f"UPDATE bench_plain SET status = 3, finished_at = ? WHERE id IN ({marks})",
                [_now_text(), *ids],
            )
            continue
        select.select([wake.r], [], [], IDLE_SECONDS)
        wake.drain()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plain")
    parser.add_argument("role", choices=["worker"])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dsn")
    parser.add_argument("--path")
    args = parser.parse_args(argv)
    if args.db == "postgresql":
        pg_worker(args.dsn, args.batch)
    else:
        sqlite_worker(args.path, args.batch)


if __name__ == "__main__":
    main()
