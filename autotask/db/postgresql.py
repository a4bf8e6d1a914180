"""PostgreSQL: SKIP LOCKED claims in one statement, LISTEN/NOTIFY wake-ups."""

import functools
import json
import logging

from django.db import DatabaseError, transaction

from ..conf import conf
from ..models import TaskQueue
from ..task import FINISHED, RUNNING
from ..timeutil import json_iso
from . import pooling
from .base import IN_UNIQUE_SCOPE, ClaimedTask, Driver, Listener, fill_statements
from .columns import (
    COLUMN,
    INSERT_COLUMNS,
    NEW_ROW_LITERALS,
    OUTCOME_COLUMNS,
    UNIQUE_COLUMNS,
    outcome_set,
    outcome_values,
    pg_record,
)

logger = logging.getLogger("autotask")


def json_rows(rows):
    """Encode ``rows`` (dicts) as a JSON document for json_to_recordset; datetimes as ISO 8601."""
    return json.dumps(rows, default=json_iso, separators=(",", ":"), ensure_ascii=False)


def sends_inlined(cursor):
    """True when ``cursor`` (Django's or the driver's) sends parameters inlined in the query text.

    Such a query may hold several statements.  psycopg 2 always inlines them;
    psycopg 3 unless Django's ``server_side_binding`` is on.
    """
    return _inlines(type(getattr(cursor, "cursor", cursor)))


@functools.cache
def _inlines(cursor_class):
    if cursor_class.__module__.startswith("psycopg2"):
        return True
    import psycopg

    return issubclass(cursor_class, psycopg.ClientCursor)


# -- the statements -------------------------------------------------------
# Each statement whole, as the server receives it, with named parameters.
# {table}, {waiting}, {claimed}, {inserted} (see fill_statements),
# {finish_record} and {outcome_set} are filled once per table (statements());
# the other fields per call.

# The claim's selection of due rows.  The status is written out, not a
# parameter: a prepared claim's generic plan (one planned for any parameters)
# can then read the partial indexes, whose condition it must prove.  The MIN()
# term is the due guard (see Driver.claim_due_guard): one probe of the due
# index skips the scan of every waiting task when nothing at all is due.
# {queues}: Driver._queue_filter.
DUE = (
    "SELECT id FROM {table} WHERE status = {waiting} AND scheduled_at <= %(now)s{queues} "
    "AND (SELECT MIN(scheduled_at) FROM {table} WHERE status = {waiting}) <= %(now)s "
    "ORDER BY priority DESC, scheduled_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)
# The claim: one UPDATE over that SKIP LOCKED selection.  The selected ids as
# an array (computed once, rows locked): the update then finds them by primary
# key.  Joined as a subquery instead, a claim of a few hundred rows may be
# planned as a hash join over the whole table.  {set}: Driver._claim_set_clause.
CLAIM = "UPDATE {table} SET {set} WHERE id = ANY(ARRAY(" + DUE + ")) RETURNING {claimed}"
# Marking claimed-ahead tasks started.  One array parameter: the same statement
# text (prepared once) for any number of ids.  ``status + 0`` keeps the lease
# index out of it, as in OUTCOMES.
START = (
    "UPDATE {table} SET started_at = %(now)s, attempts = attempts + 1 "
    "WHERE id = ANY(%(ids)s) AND status + 0 = %(running)s AND worker_id = %(worker_id)s "
    "AND started_at IS NULL"
)
# A batch of outcomes (the batched finish, released lapsed leases): the outcomes
# join the rows as one JSON document.  The rows are found by primary key:
# ``t.id = ANY(ARRAY(...))`` (an array of unknown length to the planner) makes
# that the cheap path, and ``status + 0`` keeps the lease index out of it.
# That index holds an entry for every task claimed since the last vacuum; a
# finish that read it all would slow down as work accumulates.  {guard}: which
# running rows it may write; {extra_set}: what else it sets.
OUTCOMES = (
    "UPDATE {table} AS t SET {outcome_set}{extra_set} "
    "FROM json_to_recordset(%(outcomes)s::json) AS v({finish_record}) "
    "WHERE t.id = ANY(ARRAY(SELECT (o->>'id')::bigint "
    "FROM json_array_elements(%(outcomes)s::json) AS o)) "
    "AND t.id = v.id AND t.status + 0 = %(running)s AND {guard}"
)
# The bulk insert of rows: {select} sends each column once, the varying ones
# from {source}, a json_to_recordset (see PostgresDriver.insert_tasks).
INSERT_ROWS = (
    "WITH ins AS (INSERT INTO {table} ({inserted}) "
    "SELECT {select} FROM {source} RETURNING id) SELECT ins.id FROM ins"
)
# The bulk insert of rows with other columns than INSERT_COLUMNS ({columns}:
# a workflow's steps, with their workflow_id).
INSERT_WITH = (
    "WITH ins AS (INSERT INTO {table} ({columns}) SELECT {select} FROM {source} RETURNING id) "
    "SELECT ins.id FROM ins"
)
# The bulk insert of rows with unique keys (see PostgresDriver.insert_unique_many):
# {columns} are INSERT_COLUMNS and the unique ones; {order} is the key's position.
INSERT_KEYED = (
    "WITH ins AS (INSERT INTO {table} ({columns}) "
    "SELECT {select} FROM {source} ORDER BY {order} ON CONFLICT DO NOTHING RETURNING id, unique_key) "
    "SELECT ins.id, ins.unique_key FROM ins"
)
# The rows in scope holding any of the keys %(keys)s.
FIND_UNIQUE_MANY = (
    "SELECT id, unique_key FROM {table} WHERE unique_key = ANY(%(keys)s) AND " + IN_UNIQUE_SCOPE
)
# The bulk insert of calls of one task: only the arguments vary, one JSON array.
INSERT_CALLS = (
    "WITH ins AS (INSERT INTO {table} ({inserted}) "
    "SELECT {select} FROM json_array_elements_text(%(arguments)s::json) AS a(args) "
    "RETURNING id) SELECT ins.id FROM ins"
)

# Pruning a batch of expired finished rows.  The batch is locked first,
# skipping rows another transaction holds (another worker pruning at the same
# moment, an operator's action), and then deleted by primary key: workers
# pruning at once never wait for each other.  A DELETE ... WHERE id IN
# (SELECT ... LIMIT n) made two of them meet the same rows in different
# orders, and PostgreSQL broke the deadlock by failing one of them (seen
# with eight workers on a table of eleven million rows).  The expiry index
# hands over the expired rows.
PRUNE = (
    "DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM {table} "
    "WHERE status IN ({finished}) AND expires_at <= %(now)s AND {not_held} "
    "LIMIT %(limit)s FOR UPDATE SKIP LOCKED))"
)


@functools.cache
def statements(table):
    """The statements for ``table`` (quoted), their per-table fields filled."""
    return fill_statements(
        {
            "DUE": DUE,
            "CLAIM": CLAIM,
            "START": START,
            "OUTCOMES": OUTCOMES,
            "INSERT_ROWS": INSERT_ROWS,
            "INSERT_WITH": INSERT_WITH,
            "INSERT_KEYED": INSERT_KEYED,
            "FIND_UNIQUE_MANY": FIND_UNIQUE_MANY,
            "INSERT_CALLS": INSERT_CALLS,
            "PRUNE": PRUNE,
        },
        table,
        finished=", ".join(str(status) for status in FINISHED),
        finish_record=pg_record((("id", "id"), *OUTCOME_COLUMNS)),
        outcome_set=outcome_set(lambda name, column: f"v.{name}"),
    )


def numbered(sql, params):
    """``sql`` with $1, $2... for its named parameters (a PREPARE's body), and EXECUTE's arguments.

    The parameters are numbered in the order of ``params``, those ``sql`` uses.
    """
    names = [name for name in params if f"%({name})s" in sql]
    body = sql % {name: f"${i}" for i, name in enumerate(names, 1)}
    return body, ", ".join(f"%({name})s" for name in names)


def _isoformat(moment):
    return moment.isoformat()


def _unencoded(value):
    return value


class PostgresDriver(Driver):
    vendor = "postgresql"
    supports_listen = True
    supports_skip_locked = True
    supports_returning = True
    supports_update_returning = True
    supports_partial_indexes = True
    supports_application_name = True
    claim_due_guard = True
    prepared_on = None  # the DB-API connection the statements in ``prepared`` were prepared on
    prepared = None  # SQL text -> name of its prepared statement
    INDEXES = {**Driver.INDEXES, **Driver.DUE_INDEX}
    json_cast = "::jsonb"

    @property
    def _channel(self):
        # The table name: two projects sharing a server with different task
        # tables never wake each other's workers.
        return TaskQueue._meta.db_table

    # No statement-size limit to stay under: a bulk insert sends one JSON document.
    insert_batch_size = 100_000

    # The wake-up is its own transaction, sent once the rows are committed, with
    # asynchronous commit.  PostgreSQL serialises the commits of all
    # transactions that NOTIFY (one lock for the whole server, held until the
    # commit is flushed to disk): with the NOTIFY inside the enqueue
    # transaction, concurrent enqueues queue up one fsync at a time, slower the
    # more WAL the workers write meanwhile (issue 20).  The enqueue now commits
    # without that lock, its fsync shared with concurrent commits; the
    # NOTIFY-only transaction holds the lock without waiting for the disk (it
    # stores nothing: lost in a crash, the workers' poll finds the task).
    WAKE_SQL = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)"

    def notify(self, cursor, queues):
        """Wake ``queues``' workers once the transaction commits; never when it rolls back."""
        queues = sorted(set(queues))
        if not queues:
            return
        if self.connection.in_atomic_block:
            transaction.on_commit(functools.partial(self._wake, queues), using=self.connection.alias)
        else:
            self._wake(queues)  # autocommit: the statement that stored the rows has committed

    def _wake(self, queues):
        sql = self.WAKE_SQL
        params = [self._channel, queues[0]]
        if len(queues) > 1:
            values = ", ".join(["(%s)"] * len(queues))
            sql = (
                "SELECT set_config('synchronous_commit', 'off', true), "
                f"COUNT(pg_notify(%s, q)) FROM (VALUES {values}) AS v(q)"
            )
            params = [self._channel, *queues]
        try:
            self._execute_direct(sql, params)
        except DatabaseError:
            # The tasks are stored: failing the enqueue now would invite a duplicate.
            logger.warning(
                "tasks stored, but waking the workers failed; they find them within "
                "AUTOTASK_HANDLE_TASK_IDLE_TIME",
                exc_info=True,
            )

    def _insert_one(self, task, queue):
        pk = super()._insert_one(task, None)
        if queue is not None:
            self.notify(None, [queue])
        return pk

    def insert_tasks(self, tasks, notify=True):
        """Insert ``tasks`` and notify their queues in one statement (one round trip).

        A bulk insert sends each column once: a single value when every row
        has the same one (most columns of a bulk enqueue), and the others as
        one JSON document that ``json_to_recordset`` spreads over the rows.
        The statement stays the same size whatever the number of rows, and
        encoding it is the json module's work, not the driver's per-value
        quoting.
        """
        if len(tasks) < 2:
            return super().insert_tasks(tasks, notify)
        queues = sorted({t.queue for t in tasks if t.due}) if notify else []
        sql, params = self._insert_statement([task.values(self) for task in tasks])
        return self._execute_insert_many(sql, params, queues)

    def _insert_steps(self, tasks, workflow_id, notify):
        """A workflow's steps in one statement, as insert_tasks: each column sent once unless it varies."""
        queues = sorted({t.queue for t in tasks if t.due}) if notify else []
        rows = [{**task.values(self), "workflow_id": workflow_id} for task in tasks]
        sql, params = self._insert_statement(rows, (*INSERT_COLUMNS, "workflow_id"), "INSERT_WITH")
        return self._execute_insert_many(sql, params, queues)

    def insert_calls(self, template, args_list, notify=True):
        """Insert a row of ``template`` per encoded arguments, in one statement; their ids.

        Only the arguments differ from row to row: they travel as one JSON
        array, every other column once.
        """
        if len(args_list) < 2:
            return super().insert_calls(template, args_list, notify)
        select, params = self._template_select(
            template, "a.args", lambda column: f"%({column.name})s::{column.pg_type}"
        )
        params["arguments"] = self._json_array(args_list)
        sql = statements(self.table).INSERT_CALLS.format(select=select)
        return self._execute_insert_many(sql, params, [template.queue] if notify and template.due else [])

    def _execute_insert_many(self, sql, params, queues):
        """Run a ``WITH ins AS (INSERT ...) SELECT ins.id FROM ins``, notifying ``queues``; the ids."""
        # Ids grow in the order the rows were inserted, which is the order given.
        ids = [row[0] for row in self._execute_direct(sql + " ORDER BY ins.id", params)]
        self.notify(None, queues)
        return ids

    # The one-row INSERT's constants, as PostgreSQL types them.
    ONE_ROW_LITERALS = {
        name: f"{literal}::{COLUMN[name].pg_type}" if COLUMN[name].json else literal
        for name, literal in NEW_ROW_LITERALS.items()
    }

    def _direct_cursor(self, raw):
        """The enqueue statements' driver cursor on ``raw``, a DB-API connection.

        Parsing and planning the one-row INSERT is a good part of a one-by-one
        enqueue; a prepared statement skips both.  Django turns psycopg's prepared
        statements off by default (``prepare_threshold`` None), because a pooler
        in transaction mode can send the next transaction to a server session
        that never saw them.  Where the project turned them on (``"OPTIONS":
        {"prepare_threshold": N}``), our statements are run on a cursor that binds
        on the server, so that psycopg prepares them after N runs, even when
        Django's own cursors bind on the client (and so never prepare).
        """
        if getattr(raw, "prepare_threshold", None) is None:  # psycopg 2, or preparing turned off
            return raw.cursor()
        import psycopg

        return psycopg.Cursor(raw)

    def _insert_statement(self, rows, columns=INSERT_COLUMNS, statement="INSERT_ROWS"):
        """``WITH ins AS (INSERT ... RETURNING id) SELECT ins.id FROM ins`` for several ``rows`` (dicts).

        ``columns``: the columns written (each row has them); ``statement``: which
        of the statements (INSERT_ROWS, or INSERT_KEYED with the unique columns).
        """
        exprs, params, varying = [], {}, []
        for name in columns:
            column = COLUMN[name]
            first = rows[0][name]
            if all(row[name] == first for row in rows):  # the same in every row: send it once
                exprs.append(f"%({name})s::{column.pg_type}")
                params[name] = first
            else:
                # JSON columns travel as their text and are cast here.
                exprs.append(f"u.{name}::{column.pg_type}" if column.json else f"u.{name}")
                varying.append((name, "text" if column.json else column.pg_type))
        if varying:
            record = ", ".join(f"{name} {kind}" for name, kind in varying)
            source = f"json_to_recordset(%(rows)s::json) AS u({record})"
            params["rows"] = json_rows([{name: row[name] for name, _ in varying} for row in rows])
        else:
            source = "generate_series(1, %(count)s) AS u"
            params["count"] = len(rows)
        sql = getattr(statements(self.table), statement)
        order = columns.index("unique_key") + 1 if "unique_key" in columns else 1
        fields = {"select": ", ".join(exprs), "source": source, "columns": ", ".join(columns), "order": order}
        return sql.format(**fields), params

    def insert_unique_many(self, tasks):
        """Insert keyed ``tasks`` in one statement; (id, duplicate) per task, as insert_unique.

        The rows go in key order with ON CONFLICT DO NOTHING: the index
        refuses a key in scope (a stored row's, or an earlier row's of the
        batch), and concurrent batches take its locks in one order.  The
        holders of the refused keys are read in a second statement; a key
        whose holder left the scope meanwhile goes through insert_unique.
        """
        if len(tasks) < 2:
            return super().insert_unique_many(tasks)
        rows = [self._keyed_params(task) for task in tasks]
        sql, params = self._insert_statement(rows, (*INSERT_COLUMNS, *UNIQUE_COLUMNS), "INSERT_KEYED")
        inserted = {key: pk for pk, key in self._execute_direct(sql, params)}
        refused = sorted({task.unique_key for task in tasks} - set(inserted))
        holders = {}
        if refused:
            found = self._execute_direct(statements(self.table).FIND_UNIQUE_MANY, {"keys": refused})
            holders = {key: pk for pk, key in found}
        result, seen = [], set()
        for task in tasks:
            key = task.unique_key
            if key in inserted and key not in seen:
                result.append((inserted[key], False))
            elif key in inserted:
                result.append((inserted[key], True))  # an earlier call of this batch holds it
            elif key in holders:
                result.append((holders[key], True))
            else:
                result.append(self.insert_unique(task, notify=False))
                inserted[key] = result[-1][0]
            seen.add(key)
        return result

    def finish(self, worker_id, outcomes):
        """Write a batch of outcomes in one statement (one round trip, one commit)."""
        if len(outcomes) < 2:
            return super().finish(worker_id, outcomes)
        with self.cursor() as cursor:
            self._execute_hot(cursor, *self._finish_statement(worker_id, outcomes))

    def finish_and_claim(self, worker_id, outcomes, queues, limit, lease_until, now, started=True):
        """Write ``outcomes`` and claim new tasks in one statement: one round trip, one commit."""
        if not outcomes or not limit:
            return super().finish_and_claim(worker_id, outcomes, queues, limit, lease_until, now, started)
        finish_sql, finish_params = self._finish_statement(worker_id, outcomes)
        claim_sql, claim_params = self._claim_statement(worker_id, queues, limit, lease_until, now, started)
        # A data-modifying WITH runs to completion even though nothing reads it.
        # It touches only this worker's running rows; the claim only waiting ones.
        with self.cursor() as cursor:
            sql = f"WITH done AS ({finish_sql}) {claim_sql}"
            rows = self._run_claim(cursor, sql, finish_params | claim_params, queues)
        return sorted(map(ClaimedTask.from_row, rows), key=ClaimedTask.run_order)

    def finish_each(self, worker_id, outcomes):
        """Write a batch of outcomes in one statement; return the ids written."""
        if not outcomes:
            return []
        sql, params = self._finish_statement(worker_id, outcomes)
        with self.cursor() as cursor:
            cursor.execute(sql + " RETURNING t.id", params)
            return [row[0] for row in cursor.fetchall()]

    # Planner settings for a claim of all queues or of one: a claim index then
    # hands the rows over in claim order, and a sort is never the better plan.
    # With statistics from a quiet moment (hardly anything waiting, so every
    # plan looks cheap), the planner would otherwise read all due rows and sort
    # them, on each claim of a burst: 10 ms a claim with 20,000 waiting.  A
    # worker with a session of its own sets this once for the session (see
    # own_session); otherwise each claim sets it for its own statement (its
    # implicit transaction), so nothing lingers in a session a pooler shares,
    # at about 0.2 ms a claim.  That needs a cursor that sends the parameters
    # inlined (Django's default; not with server_side_binding) and autocommit:
    # inside a transaction the claim runs without it, as SET LOCAL would last
    # to the transaction's end.  Claims of several queues keep the sort, which
    # may well be their best plan.
    CLAIM_SETTINGS = "SET LOCAL enable_sort = off"
    SESSION_SETTINGS = "SET enable_sort = off"  # the same, for the session
    sorts_off = False  # own_session: the session, once set, has CLAIM_SETTINGS
    sorts_set_on = None  # the DB-API connection whose session has them

    def own_session(self, queues):
        super().own_session(queues)
        self.sorts_off = not queues or len(queues) == 1

    def _run_claim(self, cursor, sql, params, queues):
        if (queues and len(queues) > 1) or self.connection.in_atomic_block:
            return super()._run_claim(cursor, sql, params, queues)
        if self.sorts_off:
            raw = self.connection.connection
            if self.sorts_set_on is not raw:
                # In autocommit: a transaction rolled back cannot undo it.
                cursor.execute(self.SESSION_SETTINGS)
                self.sorts_set_on = raw
            return super()._run_claim(cursor, sql, params, queues)
        if not sends_inlined(cursor):
            return super()._run_claim(cursor, sql, params, queues)
        self._execute_hot(cursor, sql, params, before=self.CLAIM_SETTINGS + "; ")
        # psycopg 3 stands on the first statement's result, psycopg 2 on the last.
        while cursor.description is None and cursor.nextset():
            pass
        return cursor.fetchall()

    def _finish_statement(self, worker_id, outcomes):
        """The batched finish as (sql, params): the outcomes join the rows as one JSON document."""
        return self._outcomes_statement(outcomes, "t.worker_id = %(worker_id)s", {"worker_id": worker_id})

    def release_lapsed(self, lapsed_before, outcomes):
        """Write the outcomes of a batch of lapsed leases in one statement; return the ids written."""
        if not outcomes:
            return []
        sql, params = self._outcomes_statement(
            outcomes,
            "t.lease_expires_at < %(lapsed_before)s",
            {"lapsed_before": self._dt(lapsed_before)},
            ", worker_id = ''",
        )
        with self.cursor() as cursor:
            cursor.execute(sql + " RETURNING t.id", params)
            return [row[0] for row in cursor.fetchall()]

    def _outcomes_statement(self, outcomes, guard, guard_params, extra_set=""):
        """OUTCOMES writing ``outcomes`` to running rows that pass ``guard``, as (sql, params)."""
        sql = statements(self.table).OUTCOMES.format(guard=guard, extra_set=extra_set)
        document = json_rows([self._finish_document(outcome) for outcome in outcomes])
        return sql, {"outcomes": document, "running": RUNNING, **guard_params}

    @staticmethod
    def _finish_document(o):
        """One outcome as a row of OUTCOMES' {finish_record}: _outcome_params' values, history unencoded."""
        return {"id": o.id, **outcome_values(o, _isoformat, _unencoded)}

    def _statements(self):
        return statements(self.table)

    def prune(self, now, limit):
        """Delete up to ``limit`` finished rows whose ttl lapsed, skipping rows others hold; how many."""
        with self.cursor() as cursor:
            sql = statements(self.table).PRUNE.format(
                not_held=self._not_held()
            )  # a running workflow's steps stay
            cursor.execute(sql, {"now": self._dt(now), "limit": limit})
            return cursor.rowcount

    def _start_statement(self, worker_id, ids, now):
        """START as (sql, params)."""
        params = {"now": self._dt(now), "ids": list(ids), "running": RUNNING, "worker_id": worker_id}
        return statements(self.table).START, params

    def _execute_hot(self, cursor, sql, params, before=""):
        """Execute one of the worker's claim and finish statements, prepared if allowed.

        Planning the claim costs about as much as running it.  With
        ``prepare_statements`` (see own_session), each
        statement is prepared once per connection and then only executed.
        ``before`` is sent ahead of it in the same query (statements ending
        with "; ").
        """
        if not self.prepare_statements:
            cursor.execute(before + sql, params)
            return
        connection = self.connection.connection
        if self.prepared_on is not connection:  # a new connection: nothing prepared on it yet
            self.prepared_on, self.prepared = connection, {}
        prepared = self.prepared.get(sql)
        if prepared is None:
            body, arguments = numbered(sql, params)
            prepared = self.prepared[sql] = (f"autotask_{len(self.prepared) + 1}", arguments)
            cursor.execute(f"PREPARE {prepared[0]} AS {body}")
        cursor.execute(f"{before}EXECUTE {prepared[0]}({prepared[1]})", params)

    def listener(self):
        """LISTEN on a connection of its own, made from AUTOTASK_LISTEN_DATABASE's settings if set.

        None through a transaction pooler without that setting: LISTEN does not
        work there (see :mod:`.pooling`), the worker polls.
        """
        if not conf.LISTEN:
            return None
        source = pooling.listen_connection(self.connection)
        if source is None:
            return None
        return PostgresListener(source, self._channel)


class PostgresListener(Listener):
    """LISTEN on a connection of its own (never the one the worker queries on)."""

    def __init__(self, django_connection, channel):
        params = django_connection.get_connection_params()
        self.driver = django_connection.Database.__name__  # "psycopg" or "psycopg2"
        self.conn = django_connection.get_new_connection(params)
        if self.driver == "psycopg":
            self.conn.autocommit = True
            self.conn.execute(f'LISTEN "{channel}"')
        else:
            self.conn.set_session(autocommit=True)
            with self.conn.cursor() as cursor:
                cursor.execute(f'LISTEN "{channel}"')

    def fileno(self):
        return self.conn.fileno()

    def drain(self):
        queues = set()
        if self.driver == "psycopg":
            pgconn = self.conn.pgconn
            pgconn.consume_input()
            while (notify := pgconn.notifies()) is not None:
                queues.add(notify.extra.decode())
            if pgconn.status != 0:  # not CONNECTION_OK
                raise self.conn.OperationalError("LISTEN connection lost")
        else:
            self.conn.poll()
            while self.conn.notifies:
                queues.add(self.conn.notifies.pop(0).payload)
        return queues

    def close(self):
        try:
            self.conn.close()
        except Exception:
            logger.debug("closing the LISTEN connection failed", exc_info=True)
