"""SQLite: a single-statement claim; "database is locked" means try again."""

import functools
import json

from django.db import OperationalError

from .base import Driver, fill_statements
from .columns import INSERT_COLUMNS

# -- the statements -------------------------------------------------------
# Each statement whole, with named parameters; {table}, {waiting}, {claimed}
# and {inserted} are filled once per table (see fill_statements), the other
# fields per call.

# The claim's selection of due rows; the MIN() term is the due guard (see
# Driver.claim_due_guard).  {queues}: Driver._queue_filter.
DUE = (
    "SELECT id FROM {table} WHERE status = {waiting} AND scheduled_at <= %(now)s{queues} "
    "AND (SELECT MIN(scheduled_at) FROM {table} WHERE status = {waiting}) <= %(now)s "
    "ORDER BY priority DESC, scheduled_at, id LIMIT %(limit)s"
)
# The claim: one UPDATE is one short write transaction: SQLite serialises
# writers, so no other worker can claim the same rows in between.  {set}:
# Driver._claim_set_clause.
CLAIM = "UPDATE {table} SET {set} WHERE id IN (" + DUE + ") RETURNING {claimed}"
# The bulk insert of calls of one task: only the arguments vary, one JSON
# array that json_each spreads over the rows.
INSERT_CALLS = (
    "INSERT INTO {table} ({inserted}) "
    "SELECT {select} FROM json_each(%(arguments)s) AS j ORDER BY j.key RETURNING id"
)


@functools.cache
def statements(table):
    """The statements for ``table`` (quoted), their per-table fields filled."""
    return fill_statements({"DUE": DUE, "CLAIM": CLAIM, "INSERT_CALLS": INSERT_CALLS}, table)


class SqliteDriver(Driver):
    vendor = "sqlite"
    supports_returning = True  # SQLite 3.35+
    supports_update_returning = True
    supports_partial_indexes = True
    claim_due_guard = True
    INDEXES = {**Driver.INDEXES, **Driver.DUE_INDEX}

    def data_version(self):
        """``PRAGMA data_version``: changes when another connection, in any process, commits.

        It reads the database's shared state (the WAL index, or the file
        header's change counter), so an idle worker can ask it often; this
        connection's own commits leave it unchanged.
        """
        self.connection.ensure_connection()
        with self.connection.wrap_database_errors:
            return self.connection.connection.execute("PRAGMA data_version").fetchone()[0]

    def reserve(self):
        """Take SQLite's write lock now, inside the caller's transaction.

        A deferred transaction that reads first cannot take the write lock
        later once another connection (a worker) has written meanwhile:
        "database is locked" at once, whatever the busy timeout.  A write
        statement first takes it, waiting as the busy timeout allows; this one
        changes no row.
        """
        with self.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {self.table} SET id = id WHERE id = -1")

    def is_transient(self, exc):
        return isinstance(exc, OperationalError) or super().is_transient(exc)

    def _driver_sql(self, sql, params):
        # sqlite3 takes qmark or named placeholders; our statements hold no literal "%".
        if isinstance(params, dict):
            return sql % {name: f":{name}" for name in params}
        return sql.replace("%s", "?")

    def _statements(self):
        return statements(self.table)

    def _insert_steps(self, tasks, workflow_id, notify):
        """A workflow's steps in one statement: the varying columns as one JSON array per row.

        A multi-row VALUES list of named parameters costs SQLite time
        quadratic in their number; ``json_each`` spreads one document over
        the rows, and a column equal in every row is sent once.
        """
        if len(tasks) < 2:
            return super()._insert_steps(tasks, workflow_id, notify)
        columns = (*INSERT_COLUMNS, "workflow_id")
        rows = [{**task.values(self), "workflow_id": workflow_id} for task in tasks]
        exprs, params, varying = [], {}, []
        for name in columns:
            first = rows[0][name]
            if all(row[name] == first for row in rows):
                exprs.append(f"%({name})s")
                params[name] = first
            else:
                exprs.append(f"json_extract(j.value, '$[{len(varying)}]')")
                varying.append(name)
        params["rows"] = json.dumps([[row[name] for name in varying] for row in rows], separators=(",", ":"))
        sql = (
            f"INSERT INTO {self.table} ({', '.join(columns)}) SELECT {', '.join(exprs)} "
            "FROM json_each(%(rows)s) AS j ORDER BY j.key RETURNING id"
        )
        # Ids grow in the order the rows were inserted (AUTOINCREMENT), which is the order given.
        return sorted(row[0] for row in self._execute_direct(sql, params))

    def insert_calls(self, template, args_list, notify=True):
        """Insert a row of ``template`` per encoded arguments, in one statement; their ids.

        Only the arguments differ from row to row: they travel as one JSON
        array that ``json_each`` spreads over the rows, every other column once
        (a multi-row VALUES list would bind 17 parameters a row).
        """
        if len(args_list) < 2:
            return super().insert_calls(template, args_list, notify)
        select, params = self._template_select(
            template, "j.value", lambda column: self._param(column.name, column)
        )
        params["arguments"] = self._json_array(args_list)
        sql = statements(self.table).INSERT_CALLS.format(select=select)
        # Ids grow in the order the rows were inserted (AUTOINCREMENT), which is the order given.
        return sorted(row[0] for row in self._execute_direct(sql, params))
