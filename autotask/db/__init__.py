"""Database vendors behind one contract (see :mod:`autotask.db.base`).

Only this package knows which database it talks to.
"""

from django.db import ProgrammingError, connections

from ..conf import conf


def get_ops(alias=None):
    """Return the vendor operations object for the task database (one per connection)."""
    connection = connections[alias or conf.DATABASE]
    # Cached on the connection (one per thread and alias): building it costs
    # more than the rest of an enqueue's Python work.
    ops = connection.__dict__.get("_autotask_ops")
    if ops is None:
        ops = connection._autotask_ops = new_ops(connection)
    return ops


def new_ops(connection):
    """Build a vendor operations object of its own for ``connection`` (a worker keeps one)."""
    vendor = connection.vendor
    # The vendor in use only: a vendor module may import the models (postgresql
    # does), which the decorators, importing this package, must not load early.
    if vendor == "postgresql":
        from .postgresql import PostgresDriver as cls
    elif vendor == "sqlite":
        from .sqlite import SqliteDriver as cls
    elif vendor == "mysql":
        from .mysql import MysqlDriver as cls
    else:
        from .base import Driver as cls
    return cls(connection)


# The payload of the notification that tells PostgreSQL workers a running task
# was asked to stop (a queue's name never starts with a space).
STOP_NOTICE = " stop"


def notify_stop(alias=None):
    """Tell the workers at once that a running task was asked to stop (PostgreSQL's NOTIFY).

    Elsewhere, and when the notification is lost, workers find the request by
    polling while they run tasks.
    """
    ops = get_ops(alias)
    if ops.supports_listen and conf.LISTEN:
        ops.notify(None, [STOP_NOTICE])


def hint_for(exc):
    """A fix hint for database errors that are misconfiguration rather than an outage."""
    if isinstance(exc, ProgrammingError) or "no such table" in str(exc):
        return " (is the autotask table missing? run 'manage.py migrate')"
    return ""
