"""Unique tasks the unique-task tests enqueue and real worker processes import."""

from datetime import timedelta

from autotask.tasks import delayed_task
from tests.app.tasks import insert_record


@delayed_task(unique=True)
def by_arguments(key):
    """Unique while waiting or running; the key is the arguments."""
    insert_record(key)
    return key


@delayed_task(unique="active", unique_key="user-{user_id}")
def per_user(user_id, note=""):
    insert_record(f"{user_id}:{note}")


@delayed_task(unique="waiting", unique_key=lambda key, **kwargs: str(key))
def not_started(key, note=""):
    insert_record(f"{key}:{note}")


@delayed_task(unique=timedelta(hours=1), unique_key="{key}")
def hourly(key):
    insert_record(key)


@delayed_task(retries=2, retry_delay=0.05, unique="waiting", unique_key="{key}")
def failing_once(key):
    raise RuntimeError("fails")


@delayed_task(unique=timedelta(days=365), unique_key="{key}")
def once_a_year(key):
    """A window long enough that a test never sees two periods; its rows stay in scope."""
    insert_record(key)


@delayed_task(unique="active", unique_key="{key}")
def per_user_key(key):
    insert_record(key)
