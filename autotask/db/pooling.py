"""Poolers: what a worker may keep in its session, and which connection LISTENs.

A pooler in transaction mode (PgBouncer's ``pool_mode = transaction``) hands
the server session a client used to another client once each transaction
ends.  Through it, nothing may outlive a transaction: no session setting
(``SET``), no SQL ``PREPARE``, no advisory lock held between transactions, no
temporary table, and no ``LISTEN`` (the notifications would reach whichever
client holds the session next, or nobody).  ``AUTOTASK_POOLER =
"transaction"`` says the task database is reached so; a worker then keeps
nothing in its session (each claim sets its planner setting for its own
statement) and LISTENs, if at all, on the direct connection named by
``AUTOTASK_LISTEN_DATABASE``: claims, starts and finishes still go through
the pooler, and a notification only wakes the worker.
"""

from django.db import connections

from ..conf import conf


def transaction_pooled(connection):
    """True when ``connection`` is the task database's and reaches it through a transaction pooler."""
    return conf.POOLER == "transaction" and connection.alias == conf.DATABASE


def own_session(connection, listen):
    """May a worker keep state in ``connection``'s session (prepared statements, session settings)?

    Not through a transaction pooler, nor with Django's connection pool
    (``OPTIONS["pool"]``), which hands a closed connection's session on.  A
    worker told not to LISTEN (``AUTOTASK_LISTEN = False``, ``--no-listen``)
    keeps nothing either: that is how a pooler was declared before
    ``AUTOTASK_POOLER``.
    """
    if not listen or transaction_pooled(connection):
        return False
    return not connection.settings_dict.get("OPTIONS", {}).get("pool")


def listen_connection(connection):
    """The Django connection whose settings a LISTEN connection is opened with; None: poll.

    ``AUTOTASK_LISTEN_DATABASE``'s when set; else ``connection``'s own, unless
    that goes through a transaction pooler.
    """
    alias = conf.LISTEN_DATABASE
    if alias:
        return connections[alias]
    if transaction_pooled(connection):
        return None
    return connection


def describe(connection):
    """How workers reach ``connection``'s database and wake up, for ``autotask_status``.

    ``{"alias", "vendor", "pooler", "listen"}``; ``listen`` is the alias a
    worker LISTENs on, or ``"poll"`` (no LISTEN: not PostgreSQL, turned off,
    or behind a transaction pooler without ``AUTOTASK_LISTEN_DATABASE``).
    """
    source = listen_connection(connection) if conf.LISTEN and connection.vendor == "postgresql" else None
    return {
        "alias": connection.alias,
        "vendor": connection.vendor,
        "pooler": conf.POOLER,
        "listen": source.alias if source is not None else "poll",
    }
