"""Every AUTOTASK_* setting with its documented default, read lazily.

Reading through :data:`conf` at use time (never at import time) keeps
``override_settings`` working in tests.
"""

from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import empty

DEFAULTS = {
    # Original 2016 settings, spelled as the original spelled them.
    "IS_ACTIVE": False,
    "WORKER_EXECUTABLE": None,  # None: the running interpreter (sys.executable)
    "WORKER_MONITOR_INTERVALL": 5,  # seconds between supervisor checks of its worker
    "HANDLE_TASK_IDLE_TIME": 10,  # seconds an idle worker waits before polling again
    "RETRY_DELAY": 2,  # seconds before the first retry; later retries back off
    "CLEAN_INTERVALL": 600,  # seconds between clean-up runs of expired results
    # Added settings.
    "DATABASE": "default",  # the database alias holding the task table
    "SERIALIZER": "json",  # "json" (default) or "pickle"
    "LISTEN": True,  # PostgreSQL: LISTEN for wake-ups (behind a pooler: see POOLER, LISTEN_DATABASE)
    # How AUTOTASK_DATABASE is reached: None (directly), "transaction" (a pooler in transaction
    # mode, e.g. PgBouncer: no session state is kept on it) or "session" (a pooler in session mode).
    "POOLER": None,
    # PostgreSQL: the alias in DATABASES of a direct connection to the task database, used only
    # for LISTEN (behind a transaction pooler); None: LISTEN on AUTOTASK_DATABASE's server.
    "LISTEN_DATABASE": None,
    "CONCURRENCY": 1,  # tasks one worker runs at once (threads)
    # async def tasks one worker runs at once on its event loop, beside the threads; 0: none, async
    # tasks then take a thread each (asyncio.run per task).
    "ASYNC_CONCURRENCY": 100,
    # Most tasks one worker claims beyond its free slots while its tasks are short (a few ms):
    # one claim and one completion statement then serve many tasks.  0 turns it off.
    "PREFETCH": 200,
    "QUEUES": None,  # queues a worker serves; None: all
    "LEASE_SECONDS": 30,  # a running task's lease; renewed every third of it, recovered after it lapses
    "RETRY_BACKOFF": 2.0,  # factor between successive retry delays (1.0: constant)
    "RETRY_MAX_DELAY": 3600,  # cap on a single retry delay, seconds
    "DEFAULT_QUEUE": "default",
    "CLEAN_BATCH_SIZE": 1000,  # rows deleted per statement when pruning results
    "NON_SERVING_COMMANDS": (),  # extra management commands that must not start a worker
    # False where a process manager runs `manage.py run_autotask` itself: no worker beside Django.
    "WORKER_AUTOSTART": True,
    # Seconds a worker whose Django process ended lets its running tasks finish before it exits
    # anyway (those tasks are then recovered like a crashed worker's).
    "ORPHAN_GRACE_SECONDS": 30,
    # Seconds a task that failed for good (ERROR) is kept for the admin, retries and
    # get_result(); None: until deleted by hand or by `autotask_clean --failed-older-than`.
    "FAILED_TTL": 7 * 24 * 3600,
    # OpenTelemetry spans for each enqueue and each attempt (the opentelemetry extra; see autotask.tracing).
    "TRACING": False,
    # Seconds the per-minute statistics (the dashboard's charts) are kept; workers prune older rows.
    "STATS_KEEP": 2 * 24 * 3600,
    # Process mode: every task of a worker runs in one of this many child processes (None: in
    # threads; tasks declared isolated=True, and sync tasks with a timeout, still get a child).
    "PROCESSES": None,
    # A child process is replaced after this many tasks (None: never) ...
    "CHILD_MAX_TASKS": None,
    # ... and once its resident memory passes this many megabytes (None: never).
    "CHILD_MAX_MEMORY": None,
}


def _seconds_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or value != value or value < 0 or value == float("inf"):
        raise ImproperlyConfigured(f"AUTOTASK_{name} must be {SECONDS_OR_NONE}, not {value!r}.")
    return value


def _true_or_false(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ImproperlyConfigured(f"AUTOTASK_{name} must be True or False, not {value!r}.")


def _keep_seconds(name: str, value: Any) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or value != value or not DAY_SECONDS <= value < float("inf"):
        raise ImproperlyConfigured(f"AUTOTASK_{name} must be {KEEP_SECONDS}, not {value!r}.")
    return value


def _count(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ImproperlyConfigured(f"AUTOTASK_{name} must be {COUNT}, not {value!r}.")


def _count_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"AUTOTASK_{name} must be {COUNT_OR_NONE}, not {value!r}.")
    return value


COUNT = "an integer >= 0 (0: async tasks take a thread each)"
COUNT_OR_NONE = "None or an integer >= 1"
SECONDS_OR_NONE = "None (keep until deleted) or a number of seconds >= 0"
DAY_SECONDS = 24 * 3600  # the dashboard shows the last day: statistics are kept at least that long
KEEP_SECONDS = f"a number of seconds >= {DAY_SECONDS} (one day, the dashboard's longest window)"
POOLER_MODES = (None, "transaction", "session")
POOLER_VALUES = "None (no pooler), 'transaction' or 'session' (the pooler's pool mode)"


def _pooler(name: str, value: Any) -> str | None:
    if value in POOLER_MODES and (value is None or isinstance(value, str)):
        return value
    raise ImproperlyConfigured(f"AUTOTASK_{name} must be {POOLER_VALUES}, not {value!r}.")


def _alias_or_none(name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value in django_settings.DATABASES):
        return value
    raise ImproperlyConfigured(
        f"AUTOTASK_{name} must be None or the alias of a database in DATABASES "
        f"({', '.join(map(repr, django_settings.DATABASES))}), not {value!r}."
    )


# Settings checked whenever they are read (also reported by the system check autotask.E010).
VALIDATE = {
    "ASYNC_CONCURRENCY": _count,
    "FAILED_TTL": _seconds_or_none,
    "TRACING": _true_or_false,
    "STATS_KEEP": _keep_seconds,
    "POOLER": _pooler,
    "LISTEN_DATABASE": _alias_or_none,
    "PROCESSES": _count_or_none,
    "CHILD_MAX_TASKS": _count_or_none,
    "CHILD_MAX_MEMORY": _count_or_none,
}


class Settings:
    """Attribute access to AUTOTASK_<NAME> with the defaults above.

    The annotations (one per setting in DEFAULTS) are what a type checker
    reads; there are no class attributes, so every read goes to __getattr__.
    """

    IS_ACTIVE: bool
    WORKER_EXECUTABLE: str | None
    WORKER_MONITOR_INTERVALL: float
    HANDLE_TASK_IDLE_TIME: float
    RETRY_DELAY: float
    CLEAN_INTERVALL: float
    DATABASE: str
    SERIALIZER: str
    LISTEN: bool
    POOLER: str | None
    LISTEN_DATABASE: str | None
    CONCURRENCY: int
    ASYNC_CONCURRENCY: int
    PREFETCH: int
    QUEUES: list[str] | tuple[str, ...] | None
    LEASE_SECONDS: float
    RETRY_BACKOFF: float
    RETRY_MAX_DELAY: float
    DEFAULT_QUEUE: str
    CLEAN_BATCH_SIZE: int
    NON_SERVING_COMMANDS: list[str] | tuple[str, ...]
    WORKER_AUTOSTART: bool
    ORPHAN_GRACE_SECONDS: float
    FAILED_TTL: float | None
    TRACING: bool
    STATS_KEEP: float
    PROCESSES: int | None
    CHILD_MAX_TASKS: int | None
    CHILD_MAX_MEMORY: int | None

    # Not seen by a type checker: a name not annotated above is an error there.
    if not TYPE_CHECKING:

        def __getattr__(self, name):
            if name not in DEFAULTS:
                raise AttributeError(f"unknown autotask setting {name!r}")
            # Ask the settings object behind the LazySettings proxy (the one
            # override_settings swaps in): through the proxy a read costs about ten
            # times more, most for unset settings, and reads happen on every enqueue.
            holder = django_settings._wrapped
            if holder is empty:
                holder = django_settings  # not configured yet: let Django configure it (or say why not)
            value = getattr(holder, f"AUTOTASK_{name}", DEFAULTS[name])
            validate = VALIDATE.get(name)
            return value if validate is None else validate(name, value)


conf = Settings()
