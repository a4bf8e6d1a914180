"""Every AUTOTASK_* setting with its documented default, read lazily.

Reading through :data:`conf` at use time (never at import time) keeps
``override_settings`` working in tests.
"""

from django.conf import settings as django_settings

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
    "LISTEN": True,  # PostgreSQL: LISTEN for wake-ups (turn off behind PgBouncer transaction mode)
    "CONCURRENCY": 1,  # tasks one worker runs at once (threads)
    "QUEUES": None,  # queues a worker serves; None: all
    "LEASE_SECONDS": 30,  # a running task's lease; renewed every third of it, recovered after it lapses
    "RETRY_BACKOFF": 2.0,  # factor between successive retry delays (1.0: constant)
    "RETRY_MAX_DELAY": 3600,  # cap on a single retry delay, seconds
    "DEFAULT_QUEUE": "default",
    "CLEAN_BATCH_SIZE": 1000,  # rows deleted per statement when pruning results
    "NON_SERVING_COMMANDS": (),  # extra management commands that must not start a worker
}


class Settings:
    """Attribute access to AUTOTASK_<NAME> with the defaults above."""

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"unknown autotask setting {name!r}")
        return getattr(django_settings, f"AUTOTASK_{name}", DEFAULTS[name])


conf = Settings()
