"""What each database must offer autotask: versions, journal mode, poolers, SKIP LOCKED.

The system checks in :mod:`autotask.checks` register these (ids unchanged);
only this package knows which database it is talking to.
"""

from django.core import checks as django_checks
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from ..conf import conf

SQLITE_MINIMUM = (3, 35)  # UPDATE ... RETURNING, which the claim needs


POSTGRESQL_MINIMUM = 130000  # server_version_num of 13.0


SUPPORTED_VENDORS = ("postgresql", "sqlite", "mysql")


POOLER_PORT = "6432"  # PgBouncer's customary port


POOLER_HOST_HINTS = ("pgbouncer", "pooler")  # e.g. Supabase's and Neon's pooled host names


def _pooler_warning(connection):
    try:
        if not conf.LISTEN or conf.POOLER is not None:
            return []  # polling, or the project said how the database is reached
    except ImproperlyConfigured:
        return []  # reported by autotask.E010
    config = connection.settings_dict
    host = str(config.get("HOST") or "").lower()
    reasons = []
    if str(config.get("PORT") or "") == POOLER_PORT:
        reasons.append(f"PORT is {POOLER_PORT}, PgBouncer's port")
    if config.get("DISABLE_SERVER_SIDE_CURSORS"):
        reasons.append("DISABLE_SERVER_SIDE_CURSORS is set, as PgBouncer's transaction mode needs")
    if any(word in host for word in POOLER_HOST_HINTS):
        reasons.append(f"HOST {host!r} names a connection pooler")
    if not reasons:
        return []
    return [
        django_checks.Warning(
            f"AUTOTASK_LISTEN is on, but the task database seems to be behind a connection pooler "
            f"({'; '.join(reasons)}). LISTEN does not work through a pooler in transaction mode: "
            "workers would only notice new tasks when they poll.",
            hint="Set AUTOTASK_POOLER = 'transaction' and name a direct connection for LISTEN in "
            "AUTOTASK_LISTEN_DATABASE (or leave it unset: workers poll every "
            "AUTOTASK_HANDLE_TASK_IDLE_TIME seconds); with a pooler in session mode, "
            "AUTOTASK_POOLER = 'session'.",
            id="autotask.W012",
        )
    ]


# -- poolers (ids E080-E089, W080-W089) ----


def _address(config):
    return (str(config.get("HOST") or ""), str(config.get("PORT") or ""))


def pooler_messages(connection):
    """AUTOTASK_POOLER and AUTOTASK_LISTEN_DATABASE against the databases they name (no connection)."""
    messages = []
    try:
        pooler, listen_alias = conf.POOLER, conf.LISTEN_DATABASE
    except ImproperlyConfigured:
        return []  # reported by autotask.E010
    if pooler is not None and connection.vendor != "postgresql":
        messages.append(
            Error(
                f"AUTOTASK_POOLER is {pooler!r}, but the task database is {connection.vendor}: "
                "autotask knows how to work through PostgreSQL poolers (PgBouncer) only.",
                hint="Remove AUTOTASK_POOLER.",
                id="autotask.E080",
            )
        )
    if listen_alias is not None:
        messages.extend(_listen_database_messages(connection, listen_alias))
    elif pooler == "transaction" and conf.LISTEN and connection.vendor == "postgresql":
        messages.append(
            django_checks.Warning(
                "AUTOTASK_POOLER is 'transaction' and AUTOTASK_LISTEN is on, but no direct connection "
                "is named for LISTEN: workers cannot LISTEN through the pooler and look for new tasks "
                "every AUTOTASK_HANDLE_TASK_IDLE_TIME seconds.",
                hint="Add a DATABASES entry that reaches the same database directly (not through the "
                "pooler) and name it in AUTOTASK_LISTEN_DATABASE; or set AUTOTASK_LISTEN = False.",
                id="autotask.W080",
            )
        )
    if pooler == "transaction" and connection.vendor == "postgresql":
        threshold = (connection.settings_dict.get("OPTIONS") or {}).get("prepare_threshold")
        if threshold is not None:
            messages.append(
                django_checks.Warning(
                    f"AUTOTASK_POOLER is 'transaction' and the task database's OPTIONS set "
                    f"prepare_threshold = {threshold!r}: psycopg then prepares statements on the "
                    "server, which a pooler in transaction mode hands to other clients.",
                    hint="Remove prepare_threshold from OPTIONS, unless the pooler tracks prepared "
                    "statements (PgBouncer 1.21+ with max_prepared_statements > 0).",
                    id="autotask.W083",
                )
            )
    return messages


def _listen_database_messages(connection, alias):
    listen = connections[alias]
    if connection.vendor != "postgresql" or listen.vendor != "postgresql":
        return [
            Error(
                f"AUTOTASK_LISTEN_DATABASE is {alias!r} ({listen.vendor}) for a task database on "
                f"{connection.vendor}: LISTEN/NOTIFY wake-ups are PostgreSQL's, both must be PostgreSQL.",
                hint="Remove AUTOTASK_LISTEN_DATABASE, or name a PostgreSQL database's alias.",
                id="autotask.E081",
            )
        ]
    pooled = conf.POOLER == "transaction"
    if pooled and (
        alias == connection.alias or _address(listen.settings_dict) == _address(connection.settings_dict)
    ):
        return [
            Error(
                f"AUTOTASK_LISTEN_DATABASE is {alias!r}, which reaches the server through the same "
                "pooler in transaction mode as the task database: LISTEN does not work there.",
                hint="Point that DATABASES entry's HOST and PORT at the PostgreSQL server itself.",
                id="autotask.E082",
            )
        ]
    messages = []
    if listen.settings_dict.get("NAME") != connection.settings_dict.get("NAME"):
        messages.append(
            django_checks.Warning(
                f"AUTOTASK_LISTEN_DATABASE is {alias!r}, whose NAME "
                f"{listen.settings_dict.get('NAME')!r} differs from the task database's "
                f"{connection.settings_dict.get('NAME')!r}: notifications reach only listeners of the "
                "same database.",
                hint="Give both entries the same database NAME (a pooler that renames databases "
                "is fine: then silence this check).",
                id="autotask.W081",
            )
        )
    if not conf.LISTEN:
        messages.append(
            django_checks.Warning(
                f"AUTOTASK_LISTEN_DATABASE is {alias!r} but AUTOTASK_LISTEN is False: nothing LISTENs.",
                hint="Remove AUTOTASK_LISTEN_DATABASE, or set AUTOTASK_LISTEN = True.",
                id="autotask.W082",
            )
        )
    return messages


def _postgresql_version(connection):
    version = connection.pg_version
    if version >= POSTGRESQL_MINIMUM:
        return []
    return [
        Error(
            f"autotask needs PostgreSQL 13 or later; the server runs version {version // 10000}.",
            hint="Upgrade the PostgreSQL server.",
            id="autotask.E015",
        )
    ]


def _sqlite_wal(connection):
    # Several workers may run when a worker starts beside every Django process
    # (IS_ACTIVE) or one worker runs several tasks at once.
    if not (conf.IS_ACTIVE is True or (isinstance(conf.CONCURRENCY, int) and conf.CONCURRENCY > 1)):
        return []
    if connection.settings_dict["NAME"] in ("", ":memory:") or connection.is_in_memory_db():
        return []  # tests' in-memory databases: no other process can reach them anyway
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        (mode,) = cursor.fetchone()
    if str(mode).lower() == "wal":
        return []
    return [
        django_checks.Warning(
            f"The SQLite task database uses journal mode {mode!r}: workers and web processes "
            "block each other's reads while one writes, and see 'database is locked' more often.",
            hint='Turn on WAL: add "init_command": "PRAGMA journal_mode=WAL;" to the database\'s OPTIONS '
            "(it stays on for that file).",
            id="autotask.W011",
        )
    ]


MARIADB_SKIP_LOCKED = (10, 6)  # first MariaDB with SELECT ... FOR UPDATE SKIP LOCKED


MYSQL_SKIP_LOCKED = (8, 0, 1)  # first MySQL with it


def mysql_skip_locked_warnings(is_mariadb, version):
    """Warn when the server predates SKIP LOCKED (claims then wait for each other)."""
    name, minimum = ("MariaDB", MARIADB_SKIP_LOCKED) if is_mariadb else ("MySQL", MYSQL_SKIP_LOCKED)
    if tuple(version) >= minimum:
        return []
    running = ".".join(map(str, version))
    return [
        django_checks.Warning(
            f"The task database runs {name} {running}, which has no SELECT ... FOR UPDATE SKIP LOCKED: "
            "workers claiming at the same time wait for each other instead of taking different tasks "
            "(still each task once, but slower, and lock wait timeouts under load).",
            hint=f"Upgrade the server to {name} {'.'.join(map(str, minimum))} or later.",
            id="autotask.W030",
        )
    ]


def vendor_supported(connection):
    """Return True when autotask supports ``connection``'s database."""
    return connection.vendor in SUPPORTED_VENDORS


def database_errors(connection):
    """What autotask.E013, E014 and W012 report, without connecting to the database."""
    errors = []
    if connection.vendor not in SUPPORTED_VENDORS:
        errors.append(
            Error(
                f"autotask does not support the {connection.vendor!r} database "
                f"(AUTOTASK_DATABASE = {connection.alias!r}).",
                hint="Keep the task table on PostgreSQL, SQLite or MariaDB/MySQL: point AUTOTASK_DATABASE "
                "at such a database in DATABASES.",
                id="autotask.E013",
            )
        )
    elif connection.vendor == "sqlite":
        version = connection.Database.sqlite_version_info
        if version < SQLITE_MINIMUM:
            errors.append(
                Error(
                    f"autotask needs SQLite {'.'.join(map(str, SQLITE_MINIMUM))} or later (for UPDATE ... "
                    f"RETURNING); Python here uses SQLite {connection.Database.sqlite_version}.",
                    hint="Use a Python built with a newer SQLite, or install pysqlite3-binary and "
                    "alias it as sqlite3.",
                    id="autotask.E014",
                )
            )
    elif connection.vendor == "postgresql":
        errors.extend(_pooler_warning(connection))
    errors.extend(pooler_messages(connection))
    return errors


def server_errors(connection):
    """Checks that need a connection: server version (E015), SQLite's journal mode (W011)."""
    if connection.vendor == "postgresql":
        return _postgresql_version(connection)
    if connection.vendor == "sqlite":
        return _sqlite_wal(connection)
    return []


def mysql_server_warnings(connection):
    """A MariaDB/MySQL task database lets concurrent claims skip each other's rows (W030)."""
    if connection.vendor != "mysql":
        return []
    return mysql_skip_locked_warnings(connection.mysql_is_mariadb, connection.mysql_version)
