"""Database vendors behind one contract (see :mod:`autotask.db.base`).

Only this package knows which database it talks to.
"""

from django.db import connections

from ..conf import conf


def get_ops(alias=None):
    """Return the vendor operations object for the task database."""
    connection = connections[alias or conf.DATABASE]
    vendor = connection.vendor
    if vendor == "postgresql":
        from .postgresql import PostgresOps as cls
    elif vendor == "sqlite":
        from .sqlite import SqliteOps as cls
    elif vendor == "mysql":
        from .mysql import MysqlOps as cls
    else:
        from .base import DatabaseOps as cls
    return cls(connection)
