"""The contract every database vendor implements, and its portable defaults.

Everything above this package speaks these verbs; a vendor module overrides
the ones its database can do better and declares what it supports through
the feature flags.  Time is always a parameter (``now``) so callers and tests
choose the instant instead of reading the database clock.
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import NamedTuple

from django.db import DatabaseError, InterfaceError, OperationalError, transaction

from ..definitions import unique as scopes
from ..task import CANCELLED, DONE, FINISHED, HELD, RUNNING, WAITING
from .columns import (
    CLAIM_COLUMNS,
    COLUMN,
    INSERT_COLUMNS,
    NEW_ROW_LITERALS,
    UNIQUE_COLUMNS,
    outcome_set,
    outcome_values,
)

# The unique index: one entry per row in its key's scope.  "waiting" counts
# a row until it starts (attempts = 0): a claimed-ahead row (RUNNING, never
# started) stays in scope, released or recovered it goes back to WAITING
# without leaving it, and no state change of the worker moves a row into the
# scope, so none can meet a conflict.  A window's row is in scope until it is
# deleted (its key holds the period's number).
UNIQUE_INDEX = "autotask_unique_idx"
IN_UNIQUE_SCOPE = (
    f"unique_key IS NOT NULL AND (unique_scope = {scopes.WINDOW} OR (status IN ({WAITING}, {RUNNING}) "
    f"AND (unique_scope = {scopes.ACTIVE} OR attempts = 0)))"
)
# A released started row that must keep its attempt (see Driver.release).
KEEPS_ATTEMPT = f"unique_scope = {scopes.WAITING}"
# Tries of a keyed insert whose rival left the scope before it could be read.
UNIQUE_INSERT_TRIES = 10


@dataclass
class NewTask:
    """A task row about to be inserted."""

    function: str
    args: str
    created_at: object
    scheduled_at: object
    kind: str = "delayed"
    queue: str = "default"
    priority: int = 0
    ttl: float = 300.0
    max_attempts: int = 1
    options: dict = field(default_factory=dict)
    schedule_id: int | None = None
    unique_key: str | None = None  # with unique_scope: see Driver.insert_unique
    unique_scope: int | None = None
    # Concurrency limits: a row with a key is stored HELD (see autotask.db.flow).
    concurrency_key: str | None = None
    concurrency_limit: int | None = None

    @property
    def due(self):
        """Due as it is stored (no delay): workers are woken for it on commit."""
        return self.scheduled_at <= self.created_at

    def values(self, ops):
        """The row's values, keyed by column (every one of INSERT_COLUMNS)."""
        return {
            "function": self.function,
            "kind": self.kind,
            "queue": self.queue,
            "priority": self.priority,
            "status": WAITING,
            "args": self.args,
            "created_at": ops._dt(self.created_at),
            "scheduled_at": ops._dt(self.scheduled_at),
            "ttl": float(self.ttl),
            "attempts": 0,
            "max_attempts": self.max_attempts,
            "options": json.dumps(self.options, separators=(",", ":")) if self.options else "{}",
            "worker_id": "",
            "error_message": "",
            "traceback": "",
            "history": "[]",
            "schedule_id": self.schedule_id,
        }

    def with_args(self, args):
        """Return a copy of this row with other encoded arguments (cheaper than copy.copy)."""
        clone = object.__new__(NewTask)
        clone.__dict__.update(self.__dict__)
        clone.args = args
        return clone


@dataclass
class ClaimedTask:
    """A task a worker holds a lease on."""

    id: int
    function: str
    kind: str
    queue: str
    priority: int
    args: str
    attempts: int  # including the attempt just started (once started: see Driver.claim)
    max_attempts: int
    ttl: float
    options: dict
    history: list
    schedule_id: int | None
    created_at: object = None
    scheduled_at: object = None  # when it was due (a retry: the retry's time)

    @classmethod
    def from_row(cls, row):
        values = dict(zip(CLAIM_COLUMNS, row, strict=True))
        values["options"] = _json(values["options"], {})
        values["history"] = _json(values["history"], [])
        return cls(**values)

    @staticmethod
    def run_order(task):
        """Sort key: the order the claim selected in (RETURNING does not keep it)."""
        return (-task.priority, task.id)


class _PerCall(dict):
    """Leaves the per-call fields of a statement in place for the second fill."""

    def __missing__(self, key):
        return "{" + key + "}"


def fill_statements(templates, table, **fields):
    """``templates`` (name: SQL) as attributes, their per-table fields filled.

    Those are {table} (quoted), {waiting} (the status, written out),
    {claimed} and {inserted} (the column lists of .columns), and ``fields``;
    the other fields stay for each call to fill.
    """
    fixed = _PerCall(
        table=table,
        waiting=WAITING,
        claimed=", ".join(CLAIM_COLUMNS),
        inserted=", ".join(INSERT_COLUMNS),
        **fields,
    )
    return SimpleNamespace(**{name: sql.format_map(fixed) for name, sql in templates.items()})


def _json_text(value):
    return json.dumps(value, separators=(",", ":"))


def _json(value, default):
    """Decode a JSON column that a driver returned as text (or already decoded)."""
    if value is None or value == "":
        return default
    if value == "[]" or value == "{}":  # the common case (a first attempt), without a parse
        return [] if value == "[]" else {}
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


@dataclass
class Outcome:
    """What became of one attempt; written back by :meth:`Driver.finish`."""

    id: int
    status: int  # DONE, ERROR, or WAITING for a retry
    finished_at: object
    result: str | None = None
    error_message: str = ""
    traceback: str = ""
    retry_at: object = None  # with status WAITING: when to run again
    expires_at: object = None
    history: list = field(default_factory=list)
    schedule_id: int | None = None  # set for runs of periodic/cron tasks
    # [workflow id, stage] of a workflow's step, set by the worker (not written;
    # a class default, not a field: a plain task's outcome pays nothing for it).
    workflow = None


class Lapsed(NamedTuple):
    """A running task whose lease lapsed (see :meth:`Driver.lapsed_leases`)."""

    id: int
    attempts: int
    max_attempts: int
    worker_id: str
    history: list
    started: bool  # started_at set: an attempt was used; else only claimed ahead
    options: dict  # the stored options (failed_ttl)
    queue: str = ""  # for the statistics of what recovery made of it


class Driver:
    """The task table's driver: the portable implementation, plain SQL every supported database accepts.

    One per connection (:func:`autotask.db.get_ops`).  Callers use only the
    names in :attr:`CONTRACT` (and the attributes ``vendor``, ``table``,
    ``connection``, ``insert_batch_size``, ``INDEXES`` and the ``supports_*``
    flags); every other method is private.  A vendor module may override any
    name of :attr:`CONTRACT` and of :attr:`HOOKS`, and must provide a claim:
    ``claim`` itself, or ``_statements()`` with the claim as one statement
    (``DUE``, the selection, and ``CLAIM``: see the PostgreSQL and SQLite
    drivers).
    tests/db/test_contract.py holds these lists.
    """

    CONTRACT = (
        # enqueue
        "insert_tasks",
        "insert_calls",
        "insert_unique",
        "insert_unique_many",
        "insert_steps",
        "count_steps",
        "notify",
        "cursor",
        # the worker
        "own_session",
        "claim",
        "start",
        "finish",
        "finish_and_claim",
        "finish_each",
        "write_reports",
        "release",
        "renew_leases",
        "next_due",
        "listener",
        "data_version",
        "is_transient",
        "reset_connection",
        # maintenance and operators
        "lapsed_leases",
        "release_lapsed",
        "unclaim_lapsed",
        "prune",
        "cancel",
        "reserve",
        # schema
        "create_indexes",
        "drop_indexes",
        "create_unique_index",
        "drop_unique_index",
    )
    # The private methods a vendor may override (the other private ones are helpers).
    HOOKS = (
        "_statements",
        "_claim_statement",
        "_claim_select",
        "_start_statement",
        "_run_claim",
        "_execute_hot",
        "_insert_one",
        "_insert_steps",
        "_returning_notify",
        "_execute_insert",
        "_direct_cursor",
        "_driver_sql",
        "_drop_index_sql",
        "_insert_keyed",
        "_find_unique",
    )

    vendor = "unknown"
    # Feature flags, in the manner of django.db.backends.*.features.
    supports_listen = False  # LISTEN/NOTIFY wake-ups
    supports_skip_locked = False  # SELECT ... FOR UPDATE SKIP LOCKED
    supports_returning = False  # INSERT ... RETURNING
    supports_update_returning = False  # UPDATE ... RETURNING
    supports_partial_indexes = False
    supports_application_name = False  # a connection setting that names the client to the server
    json_cast = ""  # what follows a JSON text parameter in SQL (a cast to the column's type)
    # Rows per INSERT statement of a bulk enqueue: SQLite allows 32,766 parameters.
    insert_batch_size = 1000
    # The claim first checks that anything is due (the MIN() term of the
    # vendor's claim).  The claim index is in priority order, so a claim that
    # finds fewer due tasks than it asks for reads on through every waiting
    # task not due yet.  This check (one probe of the due index, evaluated
    # once) skips the whole scan when nothing at all is due.  MIN(), not
    # EXISTS: the planner reads MIN() off the index, while for EXISTS it may
    # pick a sequential scan, misjudging how many rows are due.
    claim_due_guard = False
    # Set by own_session(): statements may be prepared (vendors that can then
    # prepare their claim and finish once).
    prepare_statements = False

    # The one-row INSERT: what every new task starts with is written as a
    # literal, the rest are parameters (each costs the driver and the server).
    ONE_ROW_LITERALS = NEW_ROW_LITERALS
    held_cursor = None  # (DB-API connection, driver cursor) for execute_direct

    def __init__(self, connection):
        # Imported here, not at module level: the decorators import this module,
        # and must stay importable when 'autotask' is missing from INSTALLED_APPS
        # so that the system check (autotask.E012) can say so.
        from ..models import PausedQueue, TaskQueue, Workflow

        self.connection = connection
        self.table = self._quote(TaskQueue._meta.db_table)
        self.paused_table = self._quote(PausedQueue._meta.db_table)
        self.workflow_table = self._quote(Workflow._meta.db_table)
        self.one_row_sql = {}  # notify or not -> the one-row INSERT

    # -- helpers ---------------------------------------------------------

    def _quote(self, name):
        return self.connection.ops.quote_name(name)

    def _dt(self, value):
        """Adapt a datetime for a raw SQL parameter the way the ORM would."""
        return self.connection.ops.adapt_datetimefield_value(value)

    def cursor(self):
        return self.connection.cursor()

    def is_transient(self, exc):
        """Return True when ``exc`` means "try again" (locks, lost connections)."""
        return isinstance(exc, OperationalError | InterfaceError)

    def reset_connection(self):
        """Drop the connection after an error; the next query opens a fresh one."""
        try:
            self.connection.close()
        except DatabaseError:
            # A connection that is already dead cannot be closed cleanly; forget it.
            self.connection.connection = None
        self.connection.closed_in_transaction = False
        self.connection.needs_rollback = False

    def _param(self, name, column=None):
        """The named parameter ``name``, a value of ``column`` (JSON columns: cast as stored)."""
        if column is not None and column.json:
            return f"%({name})s{self.json_cast}"
        return f"%({name})s"

    @staticmethod
    def _in_list(prefix, values):
        """An ``IN (...)`` list of named parameters ``prefix_0``, ``prefix_1``...: (SQL, parameters)."""
        params = {f"{prefix}_{i}": value for i, value in enumerate(values)}
        return f"({', '.join(f'%({name})s' for name in params)})", params

    def _queue_filter(self, queues):
        """SQL fragment and named parameters restricting a query to ``queues`` (None: all), unpaused.

        Every claim and :meth:`next_due` build on it, so a paused queue
        (a row of the paused-queue table) is left out by the statement
        itself: a claim that starts once the pause is committed never takes
        its tasks, on every vendor and through every claim verb.  The
        subquery is uncorrelated: evaluated once per statement (a hashed
        subplan, a materialised list), and the paused table is not locked
        by a claim's FOR UPDATE.
        """
        paused = f" AND queue NOT IN (SELECT name FROM {self.paused_table})"
        if not queues:
            return paused, {}
        if len(queues) == 1:
            return " AND queue = %(queue)s" + paused, {"queue": queues[0]}
        marks, params = self._in_list("queue", queues)
        return f" AND queue IN {marks}" + paused, params

    # -- enqueue ---------------------------------------------------------

    def insert_tasks(self, tasks, notify=True):
        """Insert ``tasks`` in one statement, returning their ids in order."""
        if not tasks:
            return []
        if len(tasks) == 1 and self.supports_returning:
            task = tasks[0]
            return [self._insert_one(task, task.queue if notify and task.due else None)]
        # Row i's values are the parameters "<column>_i".
        row = "(" + ", ".join(self._param(f"{c}_{{i}}", COLUMN[c]) for c in INSERT_COLUMNS) + ")"
        sql = f"INSERT INTO {self.table} ({', '.join(INSERT_COLUMNS)}) VALUES " + ", ".join(
            row.format(i=i) for i in range(len(tasks))
        )
        params = {f"{c}_{i}": v for i, task in enumerate(tasks) for c, v in task.values(self).items()}
        with self.cursor() as cursor:
            ids = self._execute_insert(cursor, sql, params, len(tasks))
            if notify:
                self.notify(cursor, {t.queue for t in tasks if t.due})
        return ids

    def insert_steps(self, tasks, workflow_id, notify=True):
        """Insert the rows of a workflow's steps, ``workflow_id`` written with them; their ids in order.

        The plain enqueue's statements never write that column: only a
        workflow's steps pay for it.  Statements of up to ``insert_batch_size``
        rows; the caller holds the transaction.
        """
        ids = []
        for start in range(0, len(tasks), self.insert_batch_size):
            ids.extend(self._insert_steps(tasks[start : start + self.insert_batch_size], workflow_id, notify))
        return ids

    def _insert_steps(self, tasks, workflow_id, notify):
        columns = (*INSERT_COLUMNS, "workflow_id")
        row = "(" + ", ".join(self._param(f"{c}_{{i}}", COLUMN[c]) for c in columns) + ")"
        sql = f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES " + ", ".join(
            row.format(i=i) for i in range(len(tasks))
        )
        params = {f"workflow_id_{i}": workflow_id for i in range(len(tasks))}
        params |= {f"{c}_{i}": v for i, task in enumerate(tasks) for c, v in task.values(self).items()}
        with self.cursor() as cursor:
            ids = self._execute_insert(cursor, sql, params, len(tasks))
            if notify:
                self.notify(cursor, {t.queue for t in tasks if t.due})
        return ids

    def count_steps(self, workflow_id, stage, ended, failed):
        """Count ``ended`` steps of a running workflow's ``stage`` (``failed`` of them failed).

        Return (remaining, failed) as counted now, or None when the workflow
        is no longer running that stage.  The caller holds the transaction
        that wrote the steps' outcomes; the row stays locked until it ends.
        """
        sql = (
            f"UPDATE {self.workflow_table} SET remaining = remaining - %(ended)s, "
            "failed = failed + %(failed)s WHERE id = %(id)s AND stage = %(stage)s AND status = %(running)s"
        )
        params = {"ended": ended, "failed": failed, "id": workflow_id, "stage": stage, "running": RUNNING}
        with self.cursor() as cursor:
            if self.supports_update_returning:
                cursor.execute(sql + " RETURNING remaining, failed", params)
                row = cursor.fetchone()
                return None if row is None else tuple(row)
            cursor.execute(sql, params)
            if cursor.rowcount != 1:
                return None
            cursor.execute(
                f"SELECT remaining, failed FROM {self.workflow_table} WHERE id = %s", [workflow_id]
            )
            return tuple(cursor.fetchone())

    def insert_unique(self, task, notify=True):
        """Insert ``task`` (with a ``unique_key``) unless a row with its key is in scope.

        Return (its id, False), or (the id of the row in scope, True).  The
        unique index decides, never a read before the write: a rival insert
        in flight makes this one wait for its commit.  If the rival left the
        scope before it could be read (finished meanwhile), insert again.
        """
        for _ in range(UNIQUE_INSERT_TRIES):
            pk = self._insert_keyed(task)
            if pk is not None:
                if notify and task.due:
                    with self.cursor() as cursor:
                        self.notify(cursor, [task.queue])
                return pk, False
            existing = self._find_unique(task.unique_key)
            if existing is not None:
                return existing, True
        raise DatabaseError(
            f"unique key {task.unique_key!r}: the row holding it kept leaving its scope; "
            f"gave up after {UNIQUE_INSERT_TRIES} tries"
        )

    def insert_unique_many(self, tasks):
        """:meth:`insert_unique` for each of ``tasks``; the caller holds the transaction and wakes workers."""
        return [self.insert_unique(task, notify=False) for task in tasks]

    def _keyed_insert_sql(self):
        """The one-row INSERT of a row with its unique key (no RETURNING, no conflict clause)."""
        columns = (*INSERT_COLUMNS, *UNIQUE_COLUMNS)
        marks = ", ".join(self._param(c, COLUMN[c]) for c in columns)
        return f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES ({marks})"

    def _keyed_params(self, task):
        return {**task.values(self), "unique_key": task.unique_key, "unique_scope": task.unique_scope}

    def _insert_keyed(self, task):
        """Insert ``task`` with its key; its id, or None if the unique index refused it."""
        with self.cursor() as cursor:
            cursor.execute(
                self._keyed_insert_sql() + " ON CONFLICT DO NOTHING RETURNING id", self._keyed_params(task)
            )
            row = cursor.fetchone()
        return None if row is None else row[0]

    def _find_unique(self, key):
        """The id of the row in scope holding ``key``, or None."""
        with self.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {self.table} WHERE unique_key = %s AND {IN_UNIQUE_SCOPE}", [key])
            row = cursor.fetchone()
        return None if row is None else row[0]

    def _insert_one(self, task, queue):
        """Insert one row, waking ``queue``'s workers (if not None) on commit; return its id.

        A single call is the most common enqueue: one INSERT ... RETURNING,
        with a vendor's wake-up riding in its RETURNING list
        (:meth:`_returning_notify`), run by :meth:`_execute_direct`.  For
        vendors with RETURNING.
        """
        literals = self.ONE_ROW_LITERALS
        notify_sql, notify_params = self._returning_notify(queue) if queue is not None else ("", {})
        sql = self.one_row_sql.get(queue is not None)
        if sql is None:
            marks = [literals.get(c) or self._param(c, COLUMN[c]) for c in INSERT_COLUMNS]
            sql = self.one_row_sql[queue is not None] = (
                f"INSERT INTO {self.table} ({', '.join(INSERT_COLUMNS)}) VALUES ({', '.join(marks)}) "
                f"RETURNING id{notify_sql}"
            )
        params = {column: value for column, value in task.values(self).items() if column not in literals}
        return self._execute_direct(sql, params | notify_params)[0][0]

    def _returning_notify(self, queue):
        """What wakes ``queue``'s workers from a RETURNING list: (SQL after "id", its named parameters)."""
        return "", {}

    def _execute_direct(self, sql, params):
        """Run an enqueue statement on a cursor of the driver itself; all its rows.

        An enqueue is a few hundred microseconds of Python around one round
        trip, and Django's cursor wrapper is a good part of them.  The
        statement runs in the same session and transaction, after Django's
        checks and with its error translation, on a driver cursor
        (:meth:`_direct_cursor`, kept for the connection's life).  Where
        something watches the queries (``execute_wrapper``, DEBUG query
        logging, assertions on queries in tests), Django's own cursor runs it.
        Tools that patch Django's cursor wrapper instead (tracing spans) do not
        see it.  Every row is fetched: on SQLite a statement holds its write
        lock until it has run to the end.  A connection shared between threads
        (``allow_thread_sharing``) gets a cursor per statement, as from Django.
        """
        conn = self.connection
        if conn.execute_wrappers or conn.queries_logged or conn.allow_thread_sharing:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        conn.close_if_health_check_failed()
        conn.ensure_connection()
        conn.validate_thread_sharing()
        conn.validate_no_broken_transaction()
        with conn.wrap_database_errors:
            raw = conn.connection
            held = self.held_cursor
            if held is None or held[0] is not raw or getattr(held[1], "closed", False):
                held = self.held_cursor = (raw, self._direct_cursor(raw))
            cursor = held[1]
            cursor.execute(self._driver_sql(sql, params), params)
            return cursor.fetchall()

    def _direct_cursor(self, raw):
        """The driver cursor :meth:`_execute_direct` uses on ``raw``, a DB-API connection."""
        return raw.cursor()

    def _driver_sql(self, sql, params):
        """``sql`` (with Django's ``%s`` or ``%(name)s`` placeholders) in the driver's own parameter style."""
        return sql

    def insert_calls(self, template, args_list, notify=True):
        """Insert one row of ``template`` per encoded arguments in ``args_list``; their ids in order.

        Statements of up to ``insert_batch_size`` rows; the caller holds the transaction.
        """
        rows = [template.with_args(args) for args in args_list]
        size = self.insert_batch_size
        ids = []
        for start in range(0, len(rows), size):
            ids.extend(self.insert_tasks(rows[start : start + size], notify))
        return ids

    def _template_select(self, template, args_expr, placeholder):
        """The SELECT list of a bulk insert of ``template`` rows, and its parameters.

        ``args_expr`` stands for each row's arguments; every other column is
        one parameter named after it, written as ``placeholder(column)`` (a
        :class:`~autotask.db.columns.Column`).
        """
        exprs, params = [], {}
        for column, value in template.values(self).items():
            if column == "args":
                exprs.append(args_expr)
            else:
                exprs.append(placeholder(COLUMN[column]))
                params[column] = value
        return ", ".join(exprs), params

    @staticmethod
    def _json_array(texts):
        """One JSON array of ``texts`` (a bulk insert's encoded arguments)."""
        return json.dumps(texts, ensure_ascii=False, separators=(",", ":"))

    def _execute_insert(self, cursor, sql, params, count):
        if self.supports_returning:
            cursor.execute(sql + " RETURNING id", params)
            return [row[0] for row in cursor.fetchall()]
        # Without RETURNING, a multi-row INSERT yields consecutive ids from the
        # first one (true for auto-increment with the default lock mode).
        cursor.execute(sql, params)
        first = cursor.lastrowid
        return list(range(first, first + count))

    def notify(self, cursor, queues):
        """Wake workers listening for ``queues`` when the transaction commits."""

    # -- claiming --------------------------------------------------------

    def claim(self, worker_id, queues, limit, lease_until, now, started=True):
        """Mark up to ``limit`` due tasks RUNNING for ``worker_id``; return them.

        With ``started`` each counts as started (``started_at`` set, one more
        attempt used).  Without, they are only claimed ahead: held under the
        lease, ``started_at`` NULL and ``attempts`` unchanged, until
        :meth:`start` marks them just before they run.  A claimed-ahead task
        whose worker is lost goes back to waiting without using an attempt.
        """
        sql, params = self._claim_statement(worker_id, queues, limit, lease_until, now, started)
        with self.cursor() as cursor:
            rows = self._run_claim(cursor, sql, params, queues)
        return sorted(map(ClaimedTask.from_row, rows), key=ClaimedTask.run_order)

    def own_session(self, queues):
        """This ops object's connection is a session of a worker's own, which claims for ``queues``.

        Not behind a pooler in transaction mode: what is set up in the
        session stays for the worker's next statements.
        """
        self.prepare_statements = True

    def _run_claim(self, cursor, sql, params, queues):
        """Execute a statement that claims for ``queues``; return the rows it claimed."""
        self._execute_hot(cursor, sql, params)
        return cursor.fetchall()

    def _statements(self):
        """The vendor's statements (see fill_statements); a claim in one needs DUE and CLAIM."""
        raise NotImplementedError

    def _claim_statement(self, worker_id, queues, limit, lease_until, now, started=True):
        """The vendor's CLAIM as (sql, params), for vendors that can claim in one statement."""
        queue_filter, params = self._due_params(queues, limit, now)
        params |= self._claim_set_params(worker_id, lease_until, now, started)
        return self._statements().CLAIM.format(
            set=self._claim_set_clause(started), queues=queue_filter
        ), params

    def _execute_hot(self, cursor, sql, params):
        """Execute a statement of the worker's hot path (a vendor may prepare it)."""
        cursor.execute(sql, params)

    def _claim_set_clause(self, started=True):
        if not started:
            return (
                "status = %(running)s, worker_id = %(worker_id)s, started_at = NULL, "
                "lease_expires_at = %(lease_until)s"
            )
        return (
            "status = %(running)s, worker_id = %(worker_id)s, started_at = %(now)s, "
            "lease_expires_at = %(lease_until)s, attempts = attempts + 1"
        )

    def _claim_set_params(self, worker_id, lease_until, now, started=True):
        return {
            "running": RUNNING,
            "worker_id": worker_id,
            "now": self._dt(now),
            "lease_until": self._dt(lease_until),
        }

    def _due_params(self, queues, limit, now):
        """The due selection's queue filter (its {queues}) and its named parameters."""
        queue_filter, params = self._queue_filter(queues)
        return queue_filter, {"now": self._dt(now), **params, "limit": limit}

    def start(self, worker_id, ids, now):
        """Mark claimed-ahead tasks started (``started_at``, one more attempt); return the ids marked.

        A worker calls it before it runs them: a task it no longer holds
        (recovered after its lease lapsed) is not marked, and must not run.
        """
        if not ids:
            return []
        sql, params = self._start_statement(worker_id, ids, now)
        with self.cursor() as cursor:
            if self.supports_update_returning:
                self._execute_hot(cursor, sql + " RETURNING id", params)
                return [row[0] for row in cursor.fetchall()]
            # Without RETURNING: lock the rows still held and unstarted, then mark exactly those.
            marks, id_params = self._in_list("id", ids)
            with transaction.atomic(using=self.connection.alias, savepoint=False):
                cursor.execute(
                    f"SELECT id FROM {self.table} WHERE id IN {marks} AND status = %(running)s "
                    "AND worker_id = %(worker_id)s AND started_at IS NULL FOR UPDATE",
                    {**id_params, "running": RUNNING, "worker_id": worker_id},
                )
                held = [row[0] for row in cursor.fetchall()]
                if held:
                    cursor.execute(*self._start_statement(worker_id, held, now))
                return held

    def _start_statement(self, worker_id, ids, now):
        """:meth:`start` as (sql, params), without RETURNING."""
        marks, id_params = self._in_list("id", ids)
        return (
            f"UPDATE {self.table} SET started_at = %(now)s, attempts = attempts + 1 "
            f"WHERE id IN {marks} AND status = %(running)s AND worker_id = %(worker_id)s "
            "AND started_at IS NULL",
            {"now": self._dt(now), **id_params, "running": RUNNING, "worker_id": worker_id},
        )

    def _claim_select(self, queues, limit, now):
        """The vendor's DUE, the claim's selection of due rows, as (sql, params) (for EXPLAIN)."""
        queue_filter, params = self._due_params(queues, limit, now)
        return self._statements().DUE.format(queues=queue_filter), params

    def next_due(self, queues):
        """Return the earliest ``scheduled_at`` among waiting tasks (or None)."""
        where, params = self._queue_filter(queues)
        with self.cursor() as cursor:
            cursor.execute(
                f"SELECT MIN(scheduled_at) FROM {self.table} WHERE status = %(waiting)s{where}",
                {"waiting": WAITING, **params},
            )
            (value,) = cursor.fetchone()
        if value is None:
            return None
        return self._from_db_datetime(value)

    def _from_db_datetime(self, value):
        from ..models import TaskQueue  # not at the top: see __init__

        field = TaskQueue._meta.get_field("scheduled_at")
        for converter in self.connection.ops.get_db_converters(field.get_col(TaskQueue._meta.db_table)):
            value = converter(value, field, self.connection)
        return value

    # -- outcomes --------------------------------------------------------

    def finish(self, worker_id, outcomes):
        """Write the outcome of each attempt; a row this worker lost is left alone."""
        if not outcomes:
            return
        sql = (
            f"UPDATE {self.table} SET {self._outcome_set()} "
            "WHERE id = %(id)s AND status = %(running)s AND worker_id = %(worker_id)s"
        )
        guard = {"running": RUNNING, "worker_id": worker_id}
        params = [{**self._outcome_params(o), "id": o.id, **guard} for o in outcomes]
        # One transaction for the batch: one commit (one disk flush), not one per row.
        with transaction.atomic(using=self.connection.alias, savepoint=False), self.cursor() as cursor:
            cursor.executemany(sql, params)

    def finish_each(self, worker_id, outcomes):
        """:meth:`finish`, returning the ids of the rows written (this worker still held them).

        For outcomes whose writing must be followed by more in the same
        transaction (a workflow's steps): the caller holds the transaction.
        """
        sql = (
            f"UPDATE {self.table} SET {self._outcome_set()} "
            "WHERE id = %(id)s AND status = %(running)s AND worker_id = %(worker_id)s"
        )
        guard = {"running": RUNNING, "worker_id": worker_id}
        written = []
        with self.cursor() as cursor:
            for outcome in outcomes:
                cursor.execute(sql, {**self._outcome_params(outcome), "id": outcome.id, **guard})
                if cursor.rowcount == 1:
                    written.append(outcome.id)
        return written

    def write_reports(self, worker_id, reports):
        """Write running tasks' progress and metadata: ``reports`` is {id: (progress, metadata)}.

        A value None leaves the column as it is; a row this worker no longer
        runs is left alone.  One transaction for the batch.
        """
        if not reports:
            return
        progress, metadata = COLUMN["progress"], COLUMN["metadata"]
        sql = (
            f"UPDATE {self.table} SET progress = COALESCE({self._param('progress', progress)}, progress), "
            f"metadata = COALESCE({self._param('metadata', metadata)}, metadata) "
            "WHERE id = %(id)s AND status = %(running)s AND worker_id = %(worker_id)s"
        )
        params = [
            {
                "progress": None if p is None else _json_text(p),
                "metadata": None if m is None else _json_text(m),
                "id": pk,
                "running": RUNNING,
                "worker_id": worker_id,
            }
            for pk, (p, m) in sorted(reports.items())
        ]
        with transaction.atomic(using=self.connection.alias, savepoint=False), self.cursor() as cursor:
            cursor.executemany(sql, params)

    def finish_and_claim(self, worker_id, outcomes, queues, limit, lease_until, now, started=True):
        """Write ``outcomes``, then claim up to ``limit`` tasks (see :meth:`claim`); return those.

        A vendor that can do both in one statement saves a round trip and a commit.
        """
        self.finish(worker_id, outcomes)
        return self.claim(worker_id, queues, limit, lease_until, now, started) if limit else []

    def _outcome_set(self):
        """The SET list writing an outcome (the columns of :data:`~autotask.db.columns.OUTCOME_COLUMNS`)."""
        return outcome_set(self._param)

    def _outcome_params(self, o):
        """The named parameters of :meth:`_outcome_set` for the outcome ``o``."""
        return outcome_values(o, self._dt, _json_text)

    def release(self, worker_id, tasks):
        """Give claimed tasks that never ran back to the queue, as if never claimed.

        A task marked started (but not run) gets its attempt back.  Return how
        many were still held by ``worker_id``.
        """
        if not tasks:
            return 0
        ids = [task.id for task in tasks]
        # attempts before started_at: MySQL assigns from left to right, reading the new values.
        # A started row of a "waiting"-unique task keeps its attempt (with one more
        # allowed): given back, it would enter its key's scope again, where a
        # task enqueued since may hold the key.
        sql = (
            f"UPDATE {self.table} SET status = %s, worker_id = '', "
            f"attempts = attempts - CASE WHEN started_at IS NULL OR {KEEPS_ATTEMPT} THEN 0 ELSE 1 END, "
            f"max_attempts = max_attempts + CASE WHEN started_at IS NOT NULL AND {KEEPS_ATTEMPT} "
            "THEN 1 ELSE 0 END, started_at = NULL, "
            "lease_expires_at = NULL "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND status = %s AND worker_id = %s"
        )
        with transaction.atomic(using=self.connection.alias, savepoint=False), self.cursor() as cursor:
            cursor.execute(sql, [WAITING, *ids, RUNNING, worker_id])
            released = cursor.rowcount
            self.notify(cursor, {task.queue for task in tasks})
        return released

    def renew_leases(self, worker_id, lease_until, task_ids=None):
        """Extend the leases ``worker_id`` holds (only on ``task_ids`` if given); return how many.

        A worker passes the ids it is really running: a claim whose reply was
        lost with the connection must lapse and be recovered, not be renewed.
        """
        where, params = "", []
        if task_ids is not None:
            params = sorted(task_ids)
            if not params:
                return 0
            where = f" AND id IN ({', '.join(['%s'] * len(params))})"
        with self.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET lease_expires_at = %s WHERE status = %s AND worker_id = %s{where}",
                [self._dt(lease_until), RUNNING, worker_id, *params],
            )
            return cursor.rowcount

    def reserve(self):
        """Take the write lock for the rest of the caller's transaction, where the database has one.

        For an operator's read-then-write (the admin's actions).  Row-locking
        databases need nothing: the caller locks its rows.
        """

    def cancel(self, task_id, now):
        """Cancel a task that has not started; return True if it was waiting (or HELD for a slot)."""
        with self.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET status = %s, finished_at = %s, expires_at = %s "
                "WHERE id = %s AND status IN (%s, %s)",
                [CANCELLED, self._dt(now), self._dt(now + timedelta(days=1)), task_id, WAITING, HELD],
            )
            return cursor.rowcount == 1

    # -- maintenance -----------------------------------------------------

    def lapsed_leases(self, now, limit):
        """Return up to ``limit`` :class:`Lapsed` rows, oldest lease first."""
        with self.cursor() as cursor:
            cursor.execute(
                f"SELECT id, attempts, max_attempts, worker_id, history, started_at, options, queue "
                f"FROM {self.table} WHERE status = %s AND lease_expires_at < %s "
                "ORDER BY lease_expires_at LIMIT %s",
                [RUNNING, self._dt(now), limit],
            )
            return [
                Lapsed(*row[:4], _json(row[4], []), row[5] is not None, _json(row[6], {}), row[7])
                for row in cursor.fetchall()
            ]

    def release_lapsed(self, lapsed_before, outcomes):
        """Write ``outcomes`` for started tasks whose lease lapsed before ``lapsed_before``.

        One transaction for the batch.  A row whose lease was renewed
        meanwhile is left alone.  Return the ids written.
        """
        sql = (
            f"UPDATE {self.table} SET {self._outcome_set()}, worker_id = '' "
            "WHERE id = %(id)s AND status = %(running)s AND lease_expires_at < %(lapsed_before)s"
        )
        released, guard = [], {"running": RUNNING, "lapsed_before": self._dt(lapsed_before)}
        with transaction.atomic(using=self.connection.alias, savepoint=False), self.cursor() as cursor:
            for outcome in outcomes:
                cursor.execute(sql, {**self._outcome_params(outcome), "id": outcome.id, **guard})
                if cursor.rowcount == 1:
                    released.append(outcome.id)
        return released

    def unclaim_lapsed(self, lapsed_before, ids):
        """Give tasks claimed but never started back to the queue, as if never claimed.

        Only rows still unstarted whose lease lapsed before ``lapsed_before``;
        their attempts, error and history stay as they were.  Return how many.
        """
        if not ids:
            return 0
        with self.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET status = %s, worker_id = '', lease_expires_at = NULL "
                f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND status = %s AND started_at IS NULL "
                "AND lease_expires_at < %s",
                [WAITING, *ids, RUNNING, self._dt(lapsed_before)],
            )
            return cursor.rowcount

    def prune(self, now, limit):
        """Delete up to ``limit`` finished rows whose ttl lapsed; return how many.

        The steps of a running workflow stay: a later stage reads their results.
        """
        statuses = ", ".join(str(s) for s in FINISHED)
        with self.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {self.table} WHERE id IN (SELECT id FROM {self.table} "
                f"WHERE status IN ({statuses}) AND expires_at <= %s AND {self._not_held()} LIMIT %s)",
                [self._dt(now), limit],
            )
            return cursor.rowcount

    def _not_held(self):
        """A row no running workflow keeps (see prune): an uncorrelated subquery, evaluated once."""
        return (
            f"(workflow_id IS NULL OR workflow_id NOT IN "
            f"(SELECT id FROM {self.workflow_table} WHERE status = {RUNNING}))"
        )

    # -- wake-ups --------------------------------------------------------

    def listener(self):
        """Return a :class:`Listener` on a dedicated connection, or None."""
        return None

    def data_version(self):
        """A number that changes when another connection commits a write, or None (not known)."""
        return None

    # -- schema ----------------------------------------------------------

    INDEXES = {
        # name: (columns, partial condition)
        "autotask_claim_idx": ("queue, priority DESC, scheduled_at, id", f"status = {WAITING}"),
        "autotask_claim_all_idx": ("priority DESC, scheduled_at, id", f"status = {WAITING}"),
        "autotask_lease_idx": ("lease_expires_at", f"status = {RUNNING}"),
        "autotask_expiry_idx": ("expires_at", f"status >= {DONE}"),
    }
    # For vendors with ``claim_due_guard``: the earliest due time (next_due, the
    # claim's guard) in one probe; the claim indexes lead with the queue or the
    # priority, not the due time.
    DUE_INDEX = {"autotask_due_idx": ("scheduled_at", f"status = {WAITING}")}

    def create_indexes(self, schema_editor):
        for name, (columns, condition) in self.INDEXES.items():
            where = f" WHERE {condition}" if self.supports_partial_indexes else ""
            if not self.supports_partial_indexes:
                # Without partial indexes, lead with status so each index still
                # narrows to the rows it serves.
                columns = f"status, {columns}"
            schema_editor.execute(f"CREATE INDEX {name} ON {self.table} ({columns}){where}")

    def drop_indexes(self, schema_editor):
        for name in self.INDEXES:
            schema_editor.execute(self._drop_index_sql(name))

    def create_unique_index(self, schema_editor):
        """The unique index over the rows in their key's scope (migration 0004)."""
        schema_editor.execute(
            f"CREATE UNIQUE INDEX {UNIQUE_INDEX} ON {self.table} (unique_key) WHERE {IN_UNIQUE_SCOPE}"
        )

    def drop_unique_index(self, schema_editor):
        schema_editor.execute(self._drop_index_sql(UNIQUE_INDEX))

    def _drop_index_sql(self, name):
        return f"DROP INDEX {name}"


class Listener:
    """A dedicated connection that waits for task notifications."""

    def fileno(self):
        raise NotImplementedError

    def drain(self):
        """Return the set of queue names notified since the last call."""
        raise NotImplementedError

    def close(self):
        raise NotImplementedError
