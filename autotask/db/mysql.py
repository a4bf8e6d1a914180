"""MariaDB 10.6+ and MySQL 8.0+: SKIP LOCKED claims in a short transaction; polling.

Neither server has UPDATE ... RETURNING or LISTEN/NOTIFY, so a claim is a
locking SELECT followed by an UPDATE of the rows it locked, committed at
once, and an idle worker finds new tasks by polling with the idle time.

InnoDB locks every row a locking read examines, so the claim's SELECT must
read the claim index in claim order and stop at its LIMIT: a filesort would
lock every due row and leave nothing for concurrent claims.  Hence the
descending claim index, and on servers that ignore DESC in an index
(MariaDB before 10.8) a claim that goes one priority at a time.

Isolation: Django's mysql backend runs sessions at READ COMMITTED unless
``OPTIONS["isolation_level"]`` says otherwise.  At REPEATABLE READ (the
server default, and what ``isolation_level: None`` leaves in force) a
locking read also locks the gaps between index entries, so an open claim
would hold up every concurrent enqueue.  The claim therefore sets READ
COMMITTED for its own transaction whatever the session level is.  The other
verbs write single rows by primary key or are single statements, correct at
any level.
"""

import functools
import random
import time

from django.db import IntegrityError, OperationalError, transaction

from ..task import FINISHED, WAITING
from .base import CLAIM_COLUMNS, IN_UNIQUE_SCOPE, UNIQUE_INDEX, ClaimedTask, Driver, fill_statements

# InnoDB error codes meaning "this statement lost a lock conflict; run it again".
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213  # the whole transaction was rolled back
LOCK_CONFLICTS = (ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK)
LOCK_CONFLICT_ATTEMPTS = 5  # tries of one claim/finish before the worker's own back-off takes over
LOCK_CONFLICT_PAUSE = 0.01  # seconds, doubled per retry and jittered so rivals do not collide again

ATTEMPTS_INDEX = CLAIM_COLUMNS.index("attempts")
ER_DUP_ENTRY = 1062  # a unique index refused the row

# No partial indexes: a generated column holds the key while the row is in its
# scope (NULL otherwise, and NULLs never conflict), under a unique index.
UNIQUE_SLOT = "unique_slot"

# -- the statements -------------------------------------------------------
# Each statement whole, with named parameters; {table}, {waiting} and
# {claimed} are filled once per table (see fill_statements), the other fields
# per call: {queues} (Driver._queue_filter), {lock} (FOR UPDATE, SKIP LOCKED
# where the server has it), {set} (Driver._claim_set_clause), {ids}.

ADD_UNIQUE_SLOT = (
    "ALTER TABLE {table} ADD COLUMN " + UNIQUE_SLOT + " VARCHAR(255) "
    "AS (CASE WHEN " + IN_UNIQUE_SCOPE + " THEN unique_key END) STORED, "
    "ADD UNIQUE INDEX " + UNIQUE_INDEX + " (" + UNIQUE_SLOT + ")"
)
DROP_UNIQUE_SLOT = "ALTER TABLE {table} DROP INDEX " + UNIQUE_INDEX + ", DROP COLUMN " + UNIQUE_SLOT
# The row holding a key, read locked: it sees the latest commit at any isolation level.
FIND_UNIQUE = "SELECT id FROM {table} WHERE " + UNIQUE_SLOT + " = %(key)s LOCK IN SHARE MODE"
# A claim locks the due rows reading the claim index in claim order, and stops
# at its LIMIT, then marks exactly those.
LOCK_DUE = (
    "SELECT {claimed} FROM {table} WHERE status = {waiting} AND scheduled_at <= %(now)s{queues} "
    "ORDER BY priority DESC, scheduled_at, id LIMIT %(limit)s{lock}"
)
MARK_CLAIMED = "UPDATE {table} SET {set} WHERE id IN {ids}"
# Without a descending index: the highest priority due (below %(below)s after
# the first), then the due rows of that priority, locked.
TOP_PRIORITY = (
    "SELECT priority FROM {table} WHERE status = %(waiting)s AND scheduled_at <= %(now)s{queues}{lower} "
    "ORDER BY priority DESC LIMIT 1"
)
LOCK_DUE_AT_PRIORITY = (
    "SELECT {claimed} FROM {table} WHERE status = %(waiting)s AND scheduled_at <= %(now)s{queues} "
    "AND priority = %(below)s ORDER BY scheduled_at, id LIMIT %(limit)s{lock}"
)


@functools.cache
def statements(table):
    """The statements for ``table`` (quoted), their per-table fields filled."""
    return fill_statements(
        {
            "LOCK_DUE": LOCK_DUE,
            "MARK_CLAIMED": MARK_CLAIMED,
            "TOP_PRIORITY": TOP_PRIORITY,
            "LOCK_DUE_AT_PRIORITY": LOCK_DUE_AT_PRIORITY,
            "ADD_UNIQUE_SLOT": ADD_UNIQUE_SLOT,
            "DROP_UNIQUE_SLOT": DROP_UNIQUE_SLOT,
            "FIND_UNIQUE": FIND_UNIQUE,
        },
        table,
    )


class MysqlDriver(Driver):
    vendor = "mysql"
    supports_partial_indexes = False

    @property
    def supports_skip_locked(self):
        # MariaDB gained SKIP LOCKED in 10.6; every MySQL Django supports has it.
        return self.connection.features.has_select_for_update_skip_locked

    @property
    def supports_descending_indexes(self):
        # MariaDB accepts DESC in an index definition but ignores it before 10.8.
        connection = self.connection
        return not connection.mysql_is_mariadb or connection.mysql_version >= (10, 8)

    @property
    def supports_returning(self):
        # INSERT ... RETURNING: MariaDB only (10.5+).  No UPDATE ... RETURNING anywhere.
        return self.connection.features.can_return_columns_from_insert

    def _is_lock_conflict(self, exc):
        """Return True for a deadlock or lock wait timeout (safe to run again)."""
        return isinstance(exc, OperationalError) and bool(exc.args) and exc.args[0] in LOCK_CONFLICTS

    def _retrying(self, func, *args):
        """Call ``func``, running it again when it loses a lock conflict."""
        for attempt in range(1, LOCK_CONFLICT_ATTEMPTS + 1):
            try:
                return func(*args)
            except OperationalError as exc:
                # Inside the caller's transaction a deadlock rolled back their
                # work too: only they can decide to run it again.
                last = attempt == LOCK_CONFLICT_ATTEMPTS
                if last or self.connection.in_atomic_block or not self._is_lock_conflict(exc):
                    raise
            time.sleep(LOCK_CONFLICT_PAUSE * 2**attempt * random.random())

    # -- enqueue ---------------------------------------------------------

    def _direct_cursor(self, raw):
        # Django's thin wrapper: it raises what MySQLdb reports as an
        # OperationalError for a NULL or CHECK violation as an IntegrityError.
        from django.db.backends.mysql.base import CursorWrapper

        return CursorWrapper(raw.cursor())

    def _execute_insert(self, cursor, sql, params, count):
        if self.supports_returning:
            return super()._execute_insert(cursor, sql, params, count)
        # MySQL: LAST_INSERT_ID() is the first id of a multi-row INSERT.  A
        # VALUES list is a "simple insert" whose row count InnoDB knows in
        # advance, so it reserves all its ids in one step under every
        # innodb_autoinc_lock_mode (0, 1 and 2); they are consecutive in
        # steps of auto_increment_increment (greater than 1 on multi-primary
        # clusters).
        cursor.execute(sql, params)
        first = cursor.lastrowid
        step = self._autoinc_step(cursor) if count > 1 else 1
        return list(range(first, first + count * step, step))

    def _insert_keyed(self, task):
        """Insert ``task`` with its key in a savepoint; None when the unique index refuses it.

        A rival insert of the same key can deadlock with it (InnoDB's
        duplicate check takes a shared lock): outside the caller's
        transaction it is run again.
        """
        return self._retrying(self._insert_keyed_once, task)

    def _insert_keyed_once(self, task):
        try:
            with transaction.atomic(using=self.connection.alias), self.cursor() as cursor:
                cursor.execute(self._keyed_insert_sql(), self._keyed_params(task))
                return cursor.lastrowid
        except IntegrityError as exc:
            if exc.args and exc.args[0] == ER_DUP_ENTRY:
                return None
            raise

    def _find_unique(self, key):
        with self.cursor() as cursor:
            cursor.execute(statements(self.table).FIND_UNIQUE, {"key": key})
            row = cursor.fetchone()
        return None if row is None else row[0]

    def _autoinc_step(self, cursor):
        cursor.execute("SELECT @@SESSION.auto_increment_increment")
        return int(cursor.fetchone()[0])

    # -- claiming --------------------------------------------------------

    def claim(self, worker_id, queues, limit, lease_until, now, started=True):
        return self._retrying(self._claim_once, worker_id, queues, limit, lease_until, now, started)

    def _claim_once(self, worker_id, queues, limit, lease_until, now, started=True):
        """Lock due rows (skipping rows other claims hold), mark them RUNNING, commit."""
        own_transaction = not self.connection.in_atomic_block
        with transaction.atomic(using=self.connection.alias), self.cursor() as cursor:
            if own_transaction and getattr(self.connection, "isolation_level", None) != "read committed":
                # Applies to the next transaction only: this one.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            if self.supports_descending_indexes:
                rows = self._lock_due(cursor, queues, limit, now)
            else:
                rows = self._lock_due_by_priority(cursor, queues, limit, now)
            if not rows:
                return []
            ids = [row[0] for row in rows]
            marks, id_params = self._in_list("id", ids)
            cursor.execute(
                statements(self.table).MARK_CLAIMED.format(set=self._claim_set_clause(started), ids=marks),
                self._claim_set_params(worker_id, lease_until, now, started) | id_params,
            )
        # The rows were read before the UPDATE counted this attempt (if it did).
        # They are already in claim order (priority, then due time, then id).
        claimed = []
        for row in rows:
            row = list(row)
            row[ATTEMPTS_INDEX] += 1 if started else 0
            claimed.append(ClaimedTask.from_row(row))
        return claimed

    @property
    def _claim_lock(self):
        return " FOR UPDATE SKIP LOCKED" if self.supports_skip_locked else " FOR UPDATE"

    def _lock_due(self, cursor, queues, limit, now):
        """Lock up to ``limit`` due rows, reading the claim index in claim order."""
        cursor.execute(*self._claim_select(queues, limit, now))
        return list(cursor.fetchall())

    def _claim_select(self, queues, limit, now):
        queue_filter, params = self._due_params(queues, limit, now)
        return statements(self.table).LOCK_DUE.format(queues=queue_filter, lock=self._claim_lock), params

    def _lock_due_by_priority(self, cursor, queues, limit, now):
        """Lock due rows one priority at a time, highest first.

        Without a descending index, ORDER BY priority DESC, scheduled_at is a
        filesort, and InnoDB locks every due row it sorts: concurrent claims
        would find nothing to take.  With the priority fixed, the ascending
        index yields (scheduled_at, id) in order and only the rows returned
        are locked.
        """
        queue_filter, params = self._queue_filter(queues)
        due_params = {"waiting": WAITING, "now": self._dt(now), **params}
        sql = statements(self.table)
        rows, below = [], None
        while len(rows) < limit:
            lower = "" if below is None else " AND priority < %(below)s"
            cursor.execute(
                sql.TOP_PRIORITY.format(queues=queue_filter, lower=lower), {**due_params, "below": below}
            )
            found = cursor.fetchone()
            if found is None:
                break
            below = found[0]
            cursor.execute(
                sql.LOCK_DUE_AT_PRIORITY.format(queues=queue_filter, lock=self._claim_lock),
                {**due_params, "below": below, "limit": limit - len(rows)},
            )
            rows.extend(cursor.fetchall())
        return rows

    # -- outcomes --------------------------------------------------------

    def start(self, worker_id, ids, now):
        return self._retrying(super().start, worker_id, ids, now)

    def finish(self, worker_id, outcomes):
        # Running the batch again after a deadlock is harmless: each UPDATE is
        # guarded by status and worker_id.
        if outcomes:
            self._retrying(super().finish, worker_id, outcomes)

    # -- maintenance -----------------------------------------------------

    def prune(self, now, limit):
        # MySQL refuses LIMIT inside an IN subquery, and a subquery on the
        # table being deleted from.  Pick the ids first (the expiry index
        # covers that query), then delete exactly those rows, checking again
        # that they are finished and expired: a plain DELETE ... LIMIT would
        # be non-deterministic for statement-based replication.
        statuses = ", ".join(str(s) for s in FINISHED)
        expired = f"status IN ({statuses}) AND expires_at <= %s"
        with self.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {self.table} WHERE {expired} AND {self._not_held()} LIMIT %s",
                [self._dt(now), limit],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return 0
            cursor.execute(
                f"DELETE FROM {self.table} WHERE id IN ({', '.join(['%s'] * len(ids))}) AND {expired}",
                [*ids, self._dt(now)],
            )
            return cursor.rowcount

    # -- schema ----------------------------------------------------------

    def _drop_index_sql(self, name):
        return f"DROP INDEX {name} ON {self.table}"

    def create_unique_index(self, schema_editor):
        schema_editor.execute(statements(self.table).ADD_UNIQUE_SLOT)

    def drop_unique_index(self, schema_editor):
        schema_editor.execute(statements(self.table).DROP_UNIQUE_SLOT)
