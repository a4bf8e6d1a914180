"""Django settings for the benchmarks (never the test suite's).

BENCH_DB picks the database: "postgresql" (a database ``autotask_bench`` on
the server at $AUTOTASK_TEST_PG or 127.0.0.1:5432) or "sqlite" (a file under
the system's temporary directory).  Worker processes get the same variables.
"""

import ast
import json
import os
import tempfile
from urllib.parse import urlsplit

from benchmarks.harness import POOLED, PREPARED

DB = os.environ.get("BENCH_DB", "postgresql")
PG_URL = os.environ.get("AUTOTASK_TEST_PG", "postgres://postgres@127.0.0.1:5432/autotask_bench")
PG_NAME = os.environ.get("BENCH_PG_NAME", "autotask_bench")  # another name: runs side by side
# PgBouncer in transaction mode in front of the same server (the pgbouncer benchmark;
# scripts/prepare_test_machine.sh starts one on port 6432).
PGBOUNCER_URL = os.environ.get("BENCH_PGBOUNCER", "postgres://postgres@127.0.0.1:6432")
SQLITE_PATH = os.environ.get(
    "BENCH_SQLITE_PATH", os.path.join(tempfile.gettempdir(), "autotask-bench.sqlite3")
)

if DB == "postgresql":
    _url = urlsplit(PG_URL)
    default = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
        "USER": _url.username or "postgres",
        "PASSWORD": _url.password or "",
        "NAME": PG_NAME,
        # e.g. BENCH_PG_OPTIONS='{"server_side_binding": true, "prepare_threshold": 5}'
        "OPTIONS": json.loads(os.environ.get("BENCH_PG_OPTIONS", "{}")),
    }
elif DB == "sqlite":
    default = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SQLITE_PATH,
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
else:
    raise ValueError(f"BENCH_DB must be 'postgresql' or 'sqlite', not {DB!r}")

DATABASES = {"default": default}
if DB == "postgresql":
    # The same database through a connection on which psycopg may prepare
    # statements (Django turns that off by default): the one-by-one enqueue
    # is measured both ways.
    DATABASES[PREPARED] = {**default, "OPTIONS": {**default["OPTIONS"], "prepare_threshold": 5}}
    # The same database through PgBouncer: the workers of the pgbouncer benchmark claim
    # through it (AUTOTASK_DATABASE = POOLED) and LISTEN on "default" (see PooledTarget).
    _bouncer = urlsplit(PGBOUNCER_URL)
    DATABASES[POOLED] = {
        **default,
        "HOST": _bouncer.hostname or "127.0.0.1",
        "PORT": str(_bouncer.port or 6432),
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }
SECRET_KEY = "autotask-benchmarks"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["autotask"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTOTASK_IS_ACTIVE = True
# The benchmark starts exactly the workers it measures: none beside its own process.
AUTOTASK_WORKER_AUTOSTART = False
# Experiments: BENCH_AUTOTASK_<NAME>=<python literal> sets AUTOTASK_<NAME> for the
# benchmark and its workers, e.g. BENCH_AUTOTASK_PREFETCH=0.
for _name, _value in os.environ.items():
    if _name.startswith("BENCH_AUTOTASK_"):
        globals()[_name.removeprefix("BENCH_")] = ast.literal_eval(_value)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Per-task INFO lines would measure the terminal, not the queue.
    "loggers": {"autotask": {"handlers": ["console"], "level": os.environ.get("BENCH_LOG", "WARNING")}},
}
