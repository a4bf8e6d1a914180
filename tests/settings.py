"""Settings for autotask's own test suite.

AUTOTASK_TEST_DB picks the database: "sqlite" (default), "postgresql",
"pgbouncer" or "mysql".  AUTOTASK_TEST_PG / AUTOTASK_TEST_PGBOUNCER /
AUTOTASK_TEST_MYSQL override where the servers are (URLs such as
postgres://user@host:port/dbname).  "pgbouncer" reaches PostgreSQL through a
PgBouncer in transaction mode (scripts/prepare_test_machine.sh starts one on
port 6432): the task database goes through it (AUTOTASK_POOLER), and LISTEN
goes directly to the server ("listen", AUTOTASK_LISTEN_DATABASE).  The test
database is created and dropped through the direct connection (see
tests/conftest.py).  Worker processes that
tests start get AUTOTASK_TEST_DB_NAME, the name of the test database.
"""

import importlib.util
import os
import tempfile
from urllib.parse import urlsplit

DB = os.environ.get("AUTOTASK_TEST_DB", "sqlite")
TEST_DB_NAME = os.environ.get("AUTOTASK_TEST_DB_NAME")
# Parallel runs (tox envs, several checkouts) each get their own test database.
SUFFIX = os.environ.get("AUTOTASK_TEST_DB_SUFFIX") or os.environ.get("TOX_ENV_NAME", "local")
SUFFIX = SUFFIX.replace("-", "_").replace(".", "_")


def _server(url, engine, default_port):
    parts = urlsplit(url)
    return {
        "ENGINE": engine,
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or default_port),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "NAME": TEST_DB_NAME or parts.path.lstrip("/") or "test",
    }


if DB == "postgresql":
    default = _server(
        os.environ.get("AUTOTASK_TEST_PG", "postgres://postgres@127.0.0.1:5432/autotask"),
        "django.db.backends.postgresql",
        5432,
    )
    default["TEST"] = {"NAME": "test_autotask_" + SUFFIX}
elif DB == "pgbouncer":
    default = _server(
        os.environ.get("AUTOTASK_TEST_PGBOUNCER", "postgres://postgres@127.0.0.1:6432/autotask"),
        "django.db.backends.postgresql",
        6432,
    )
    default["TEST"] = {"NAME": "test_autotask_" + SUFFIX}
    # As Django's documentation asks for a pooler in transaction mode.
    default["DISABLE_SERVER_SIDE_CURSORS"] = True
    listen = _server(
        os.environ.get("AUTOTASK_TEST_PG", "postgres://postgres@127.0.0.1:5432/autotask"),
        "django.db.backends.postgresql",
        5432,
    )
    listen["TEST"] = {"NAME": default["TEST"]["NAME"]}
elif DB == "mysql":
    default = _server(
        os.environ.get("AUTOTASK_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
        "django.db.backends.mysql",
        3306,
    )
    default["OPTIONS"] = {"charset": "utf8mb4"}
    if "AUTOTASK_TEST_MYSQL_ISOLATION" in os.environ:
        # e.g. "repeatable read" (the server default); empty: leave the server's level in force.
        default["OPTIONS"]["isolation_level"] = os.environ["AUTOTASK_TEST_MYSQL_ISOLATION"] or None
    default["TEST"] = {"NAME": "test_autotask_" + SUFFIX, "CHARSET": "utf8mb4"}
else:
    # A file, not :memory:, so that worker processes share it with the tests.
    path = TEST_DB_NAME or os.path.join(tempfile.gettempdir(), f"autotask-test-{os.getpid()}.sqlite3")
    default = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "TEST": {"NAME": path},
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }

DATABASES = {"default": default}
if DB == "pgbouncer":
    DATABASES["listen"] = listen
    AUTOTASK_POOLER = "transaction"
    # A worker started with AUTOTASK_TEST_NO_LISTEN_DATABASE=1 has no direct connection: it polls.
    AUTOTASK_LISTEN_DATABASE = None if os.environ.get("AUTOTASK_TEST_NO_LISTEN_DATABASE") else "listen"
SECRET_KEY = "autotask-tests"
USE_TZ = os.environ.get("AUTOTASK_TEST_USE_TZ", "1") == "1"
TIME_ZONE = os.environ.get("AUTOTASK_TEST_TIME_ZONE", "UTC")
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # the admin's CSS in the browser test's live server
    "autotask",
    "tests.app",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
# Tests log users in; the default hasher is slow on purpose.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A worker started with AUTOTASK_TEST_IS_ACTIVE=0 runs as one started by hand on an inactive site.
AUTOTASK_IS_ACTIVE = os.environ.get("AUTOTASK_TEST_IS_ACTIVE", "1") == "1"
# Tests wait by polling; a short idle time keeps pickup quick where there is no LISTEN.
AUTOTASK_HANDLE_TASK_IDLE_TIME = float(os.environ.get("AUTOTASK_TEST_IDLE_TIME", "0.2"))
AUTOTASK_RETRY_DELAY = 0.05
# Fault-injection and supervisor tests shorten these for the processes they start, so that
# recovery takes seconds, not the default 30 s lease: AUTOTASK_TEST_<NAME> sets AUTOTASK_<NAME>.
for _name, _convert in (
    ("LEASE_SECONDS", float),
    ("WORKER_MONITOR_INTERVALL", float),
    ("ORPHAN_GRACE_SECONDS", float),
    ("CONCURRENCY", int),
    ("WORKER_EXECUTABLE", str),
    ("WORKER_AUTOSTART", lambda value: value == "1"),
    ("FAILED_TTL", lambda value: None if value == "none" else float(value)),
    ("PROCESSES", int),
    ("CHILD_MAX_TASKS", int),
    ("CHILD_MAX_MEMORY", int),
):
    if f"AUTOTASK_TEST_{_name}" in os.environ:
        globals()[f"AUTOTASK_{_name}"] = _convert(os.environ[f"AUTOTASK_TEST_{_name}"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "autotask": {"handlers": ["console"], "level": os.environ.get("AUTOTASK_TEST_LOG", "WARNING")}
    },
}

# Django's tasks framework (django.tasks on Django 6.0+, the django-tasks backport on 5.2):
# tests/backend runs its conformance tests against autotask's backend when either is present.
if importlib.util.find_spec("django.tasks") is None and importlib.util.find_spec("django_tasks"):
    INSTALLED_APPS.append("django_tasks")  # the backport's checks and signal handlers
if importlib.util.find_spec("django.tasks") or importlib.util.find_spec("django_tasks"):
    TASKS = {
        "default": {"BACKEND": "autotask.backend.AutotaskBackend", "QUEUES": ["default", "other"]},
        # Any queue; autotask options from OPTIONS for the tasks decorated with it.
        "retrying": {
            "BACKEND": "autotask.backend.AutotaskBackend",
            "QUEUES": [],
            "OPTIONS": {"retries": 1, "retry_delay": 0.01, "ttl": 600},
        },
    }
