"""Concurrency and rate limits, held by the database across every worker.

Only limited tasks pass through here; the claim, start and finish of plain
tasks are untouched.

Concurrency (admission).  A task with a concurrency key is stored HELD,
which no claim selects.  An *admission* makes HELD tasks of a key WAITING
while fewer than the key's limit are WAITING or RUNNING (counted from the
task rows themselves), in one transaction that holds the key's row of the
flow-key table locked (``SELECT … FOR UPDATE``; SQLite: its write lock).
Admissions of one key thus run one at a time, and a finish, a retry or a
recovery only lowers the count: never more than the limit of a key run at
once, whatever the number of workers and machines, and a crash between a
finish and the next admission loses nothing (the count is read again).
Admissions run after an enqueue commits, after a worker stored the outcomes
of limited tasks, and every second in every worker (due delayed tasks,
cancelled or failed ones, recovered leases).

Rates (a gate at start).  A rate-limited task is claimed like any other;
before it starts, the gate locks its rate key's row, counts the ledger's
starts in the window, records the start (the same instant as the row's
``started_at``) or gives the task back WAITING, due when the window has room,
without costing an attempt.
"""

import logging
from datetime import timedelta

from django.db import DatabaseError, transaction

from ..task import HELD, RUNNING, WAITING

logger = logging.getLogger("autotask")

CONCURRENCY = "c:"  # prefix of a concurrency key's flow row
RATE = "r:"  # prefix of a rate key's flow row
CHUNK = 100  # keys per admission transaction
SWEEP_KEYS = 1000  # keys an admission sweep looks at per pass
LEDGER_MARGIN = timedelta(seconds=60)  # ledger rows kept past their window (clocks of other workers)
RETRY_EPSILON = timedelta(milliseconds=1)  # a refused start is due just after its window has room

# Flow rows known to exist, per database alias: an admission inserts only new keys.
_known: dict[str, set[str]] = {}
# The (limit, window) this process last wrote on each flow row, per alias: rewritten on a change only.
_noted: dict[str, dict[str, tuple]] = {}


# -- the indexes (migration 0008) ------------------------------------------

PARTIAL_INDEXES = {
    # The HELD rows of a key in claim order: admissions and their sweep.
    "autotask_held_idx": ("concurrency_key, priority DESC, scheduled_at, id", f"status = {HELD}"),
    # The rows holding a slot of their key: the admission's count.
    "autotask_slots_idx": (
        "concurrency_key",
        f"concurrency_key IS NOT NULL AND status IN ({WAITING}, {RUNNING})",
    ),
}
# MySQL and MariaDB have no partial index: one over the key and the status serves both.
PLAIN_INDEXES = {"autotask_flow_idx": ("concurrency_key, status", None)}


def _indexes(ops):
    return PARTIAL_INDEXES if ops.supports_partial_indexes else PLAIN_INDEXES


def create_indexes(ops, schema_editor):
    for name, (columns, condition) in _indexes(ops).items():
        where = f" WHERE {condition}" if condition else ""
        schema_editor.execute(f"CREATE INDEX {name} ON {ops.table} ({columns}){where}")


def drop_indexes(ops, schema_editor):
    for name in _indexes(ops):
        schema_editor.execute(ops._drop_index_sql(name))


# -- helpers ---------------------------------------------------------------


def _tables(ops):
    from ..models import FlowKey, RateStart  # not at the top: see Driver.__init__

    return ops._quote(FlowKey._meta.db_table), ops._quote(RateStart._meta.db_table)


def _marks(values):
    return "(" + ", ".join(["%s"] * len(values)) + ")"


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ensure(ops, rows):
    """Insert the flow rows ``rows`` ({flow key: (limit, window)}) that may not exist yet."""
    known = _known.setdefault(ops.connection.alias, set())
    missing = sorted(key for key in rows if key not in known)
    if not missing:
        return
    flow, _ = _tables(ops)
    q = ops._quote
    columns = f"{q('key')}, {q('limit')}, {q('window')}"
    values = ", ".join(["(%s, %s, %s)"] * len(missing))
    params = [value for key in missing for value in (key, *rows[key])]
    if ops.vendor == "mysql":
        sql = f"INSERT IGNORE INTO {flow} ({columns}) VALUES {values}"
    else:
        sql = f"INSERT INTO {flow} ({columns}) VALUES {values} ON CONFLICT DO NOTHING"
    with ops.cursor() as cursor:
        cursor.execute(sql, params)
    if len(known) > 100_000:
        known.clear()
    known.update(missing)


def _lock(ops, cursor, keys):
    """Lock the flow rows of ``keys`` (sorted: concurrent admissions lock in one order)."""
    flow, _ = _tables(ops)
    q = ops._quote
    lock = " FOR UPDATE"
    if ops.vendor == "sqlite":
        ops.reserve()  # SQLite's write lock: one writer at a time anyway
        lock = ""
    sql = f"SELECT {q('key')} FROM {flow} WHERE {q('key')} IN {_marks(keys)} ORDER BY {q('key')}{lock}"
    cursor.execute(sql, keys)
    found = {row[0] for row in cursor.fetchall()}
    if len(found) < len(keys):
        # A flow row deleted since this process inserted it: insert it in this
        # transaction (rare, so the deadlock-free order matters little) and lock again.
        _known.get(ops.connection.alias, set()).difference_update(keys)
        for key in keys:
            _noted.get(ops.connection.alias, {}).pop(key, None)
        _ensure(ops, {key: (None, None) for key in keys if key not in found})
        cursor.execute(sql, keys)
        cursor.fetchall()


def _note_limit(ops, cursor, key, limit, window=None):
    """Keep the limit (and window) last seen for ``key`` on its row, for the monitor and the admin."""
    noted = _noted.setdefault(ops.connection.alias, {})
    if noted.get(key) == (limit, window):
        return
    if len(noted) > 100_000:
        noted.clear()
    noted[key] = (limit, window)
    flow, _ = _tables(ops)
    q = ops._quote
    window_check = f"{q('window')} IS NULL OR {q('window')} <> %s" if window is not None else "1 = 0"
    cursor.execute(
        f"UPDATE {flow} SET {q('limit')} = %s, {q('window')} = %s WHERE {q('key')} = %s "
        f"AND ({q('limit')} IS NULL OR {q('limit')} <> %s OR {window_check})",
        [limit, window, key, limit, *([window] if window is not None else [])],
    )


# -- concurrency: admissions -----------------------------------------------


def held_keys(ops, now, limit=SWEEP_KEYS):
    """The concurrency keys with HELD tasks due at ``now`` (up to ``limit`` of them)."""
    with ops.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT concurrency_key FROM {ops.table} WHERE status = {HELD} "
            "AND scheduled_at <= %s LIMIT %s",
            [ops._dt(now), limit],
        )
        return sorted(row[0] for row in cursor.fetchall() if row[0] is not None)


def admit(ops, now, keys=None):
    """Admit HELD tasks of ``keys`` (None: every key with due HELD tasks) up to their limits.

    Return the number of tasks admitted (made WAITING); their workers are
    woken.  Each chunk of keys is one transaction on its own: call it outside
    the caller's transaction.
    """
    return len(admit_queues(ops, now, keys, notify=True))


def admit_queues(ops, now, keys=None, notify=False):
    """:func:`admit`, returning the queue of each task admitted; the workers woken only with ``notify``.

    A worker about to claim admits without waking the others, and wakes them
    only if its claim leaves some of the admitted tasks behind.
    """
    keys = held_keys(ops, now) if keys is None else sorted(set(keys))
    queues = []
    for chunk in _chunks(keys, CHUNK):
        queues += _admit(ops, chunk, now, notify)
    return queues


def _admit(ops, keys, now, notify):
    flow_keys = [CONCURRENCY + key for key in keys]
    _ensure(ops, {key: (None, None) for key in flow_keys})
    now_db = ops._dt(now)
    with transaction.atomic(using=ops.connection.alias, savepoint=False), ops.cursor() as cursor:
        # The lock first, in a statement of its own: the count below must see
        # every admission committed before the lock was granted (a statement's
        # snapshot is taken when it starts).
        if ops.vendor == "postgresql" and _sends_both(cursor):
            queues = _lock_and_admit_postgresql(ops, cursor, keys, flow_keys, now_db)
        elif ops.vendor == "postgresql":
            _lock(ops, cursor, flow_keys)
            queues = _admit_postgresql(ops, cursor, keys, now_db)
        else:
            _lock(ops, cursor, flow_keys)
            queues = _admit_portable(ops, cursor, keys, now_db)
        if notify:
            ops.notify(cursor, set(queues))
    return queues


# The admission in one statement (PostgreSQL): for each key, the limit of its
# task next in line, less the tasks holding a slot, gives how many of the
# first held tasks (in claim order) become WAITING; RETURNING their queues.
ADMIT_POSTGRESQL = (
    "WITH k AS (SELECT DISTINCT key FROM unnest(%(keys)s::text[]) AS u(key)), "
    "lim AS (SELECT k.key, f.concurrency_limit AS n FROM k CROSS JOIN LATERAL ("
    "SELECT concurrency_limit FROM {table} WHERE status = {held} AND concurrency_key = k.key "
    "AND scheduled_at <= %(now)s ORDER BY priority DESC, scheduled_at, id LIMIT 1) AS f), "
    "free AS (SELECT lim.key, lim.n - (SELECT COUNT(*) FROM {table} WHERE concurrency_key = lim.key "
    "AND status IN ({waiting}, {running})) AS n FROM lim), "
    "pick AS (SELECT c.id FROM free CROSS JOIN LATERAL (SELECT id FROM {table} WHERE status = {held} "
    "AND concurrency_key = free.key AND scheduled_at <= %(now)s ORDER BY priority DESC, scheduled_at, id "
    "LIMIT GREATEST(free.n, 0)) AS c WHERE free.n > 0) "
    # The chosen ids as an array, computed once: the update then finds them by
    # primary key, whatever the statistics say (as the claim does; ``status + 0``
    # keeps the partial indexes out of it).
    "UPDATE {table} SET status = {waiting} WHERE id = ANY(ARRAY(SELECT id FROM pick)) "
    "AND status + 0 = {held} RETURNING queue"
)


LOCK_POSTGRESQL = (
    'SELECT "key" FROM {flow} WHERE "key" = ANY(%(flow_keys)s::text[]) ORDER BY "key" FOR UPDATE'
)


def _sends_both(cursor):
    """True when ``cursor`` is psycopg 3's and inlines parameters: two statements go in one round trip."""
    from .postgresql import sends_inlined

    return sends_inlined(cursor) and type(getattr(cursor, "cursor", cursor)).__module__.startswith("psycopg.")


def _lock_and_admit_postgresql(ops, cursor, keys, flow_keys, now_db):
    """The lock and the admission in one round trip, still two statements (two snapshots).

    Raise :class:`MissingFlowRow` (a DatabaseError: the worker tries again)
    when a flow row was missing.
    """
    flow, _ = _tables(ops)
    admit = ADMIT_POSTGRESQL.format(table=ops.table, held=HELD, waiting=WAITING, running=RUNNING)
    params = {"flow_keys": sorted(flow_keys), "keys": list(keys), "now": now_db}
    cursor.execute(LOCK_POSTGRESQL.format(flow=flow) + "; " + admit, params)
    if len(cursor.fetchall()) < len(set(flow_keys)):
        # A flow row was missing (this process's list of them is stale): the
        # admission ran without its lock.  The error rolls the transaction back;
        # the next try inserts the rows first.
        _known.get(ops.connection.alias, set()).difference_update(flow_keys)
        raise MissingFlowRow(f"a flow row of {', '.join(sorted(flow_keys))} was missing; try again")
    cursor.nextset()
    return [row[0] for row in cursor.fetchall()]


class MissingFlowRow(DatabaseError):
    """A flow row of an admission was missing: rolled back, to be run again with the rows inserted."""


def _admit_postgresql(ops, cursor, keys, now_db):
    sql = ADMIT_POSTGRESQL.format(table=ops.table, held=HELD, waiting=WAITING, running=RUNNING)
    cursor.execute(sql, {"keys": list(keys), "now": now_db})
    return [row[0] for row in cursor.fetchall()]


def _admit_portable(ops, cursor, keys, now_db):
    """The admission in a few portable statements (SQLite, MariaDB); the queues of the tasks admitted."""
    table = ops.table
    # The limit of each key: that of its task next in line (one index probe per key).
    first_in_line = _per_key(table, "concurrency_key, concurrency_limit", len(keys))
    cursor.execute(first_in_line, _key_params(keys, now_db))
    limits = dict(cursor.fetchall())
    if not limits:
        return []
    held = sorted(limits)
    cursor.execute(
        f"SELECT concurrency_key, COUNT(*) FROM {table} WHERE concurrency_key IN {_marks(held)} "
        f"AND status IN ({WAITING}, {RUNNING}) GROUP BY concurrency_key",
        held,
    )
    busy = dict(cursor.fetchall())
    free = {key: limits[key] - busy.get(key, 0) for key in held if limits[key] > busy.get(key, 0)}
    if not free:
        return []
    chosen = sorted(free)
    cursor.execute(_per_key(table, "id, queue", len(chosen), limit=True), _key_params(chosen, now_db, free))
    rows = cursor.fetchall()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    update = f"UPDATE {table} SET status = {WAITING} WHERE id IN {_marks(ids)} AND status = {HELD}"
    cursor.execute(update, ids)
    return [row[1] for row in rows]


def _per_key(table, columns, count, limit=False):
    """A UNION ALL of one branch per key: its due HELD rows in claim order, the first (or %s) of them."""
    count_sql = "%s" if limit else "1"
    branch = (
        f"SELECT * FROM (SELECT {columns} FROM {table} WHERE status = {HELD} AND concurrency_key = %s "
        f"AND scheduled_at <= %s ORDER BY priority DESC, scheduled_at, id LIMIT {count_sql}) AS h{{i}}"
    )
    return " UNION ALL ".join(branch.format(i=i) for i in range(count))


def _key_params(keys, now_db, limits=None):
    params = []
    for key in keys:
        params += [key, now_db] if limits is None else [key, now_db, limits[key]]
    return params


def admit_safely(ops, now, keys=None):
    """:func:`admit`, logging instead of raising: a worker's sweep admits what this missed."""
    try:
        return admit(ops, now, keys)
    except Exception:
        logger.warning(
            "admitting tasks of concurrency keys %s failed; a worker admits them within a second",
            ", ".join(keys or ()) or "(all)",
            exc_info=True,
        )
        return 0


# -- rates: the gate at start ----------------------------------------------


def rate_of(task):
    """(count, window seconds, key) of a claimed task's rate limit, or None."""
    options = task.options
    rate = options.get("rate_limit")
    if rate is None:
        return None
    return int(rate[0]), float(rate[1]), options.get("rate_key") or task.function


def gate(ops, worker_id, tasks, now, started):
    """Let the rate-limited ``tasks`` (claimed by ``worker_id``) start at ``now``, as their windows allow.

    ``started``: the claim marked them started (at ``now``); else the gate
    marks those it lets through.  Return (the tasks to run, the tasks given
    back): those over their limit are WAITING again, due when their window
    has room, with their attempt (if counted) given back.
    """
    groups: dict[str, list] = {}
    rates = {}
    for task in tasks:
        count, window, key = rate_of(task)
        groups.setdefault(key, []).append(task)
        rates[key] = (count, window)
    _, ledger = _tables(ops)
    _ensure(ops, {RATE + key: rates[key] for key in groups})
    q = ops._quote
    now_db = ops._dt(now)
    accepted, refused = [], []
    with transaction.atomic(using=ops.connection.alias, savepoint=False), ops.cursor() as cursor:
        _lock(ops, cursor, sorted(RATE + key for key in groups))
        for key in sorted(groups):
            count, window = rates[key]
            _note_limit(ops, cursor, RATE + key, count, window)
            span = timedelta(seconds=window)
            cursor.execute(
                f"DELETE FROM {ledger} WHERE {q('key')} = %s AND started_at <= %s",
                [key, ops._dt(now - span - LEDGER_MARGIN)],
            )
            cursor.execute(
                f"SELECT started_at FROM {ledger} WHERE {q('key')} = %s AND started_at > %s "
                "ORDER BY started_at",
                [key, ops._dt(now - span)],
            )
            entries = [ops._from_db_datetime(row[0]) for row in cursor.fetchall()]
            group = groups[key]
            room = max(0, count - len(entries))
            through, over = group[:room], group[room:]
            if through and not started:
                through = _mark_started(ops, cursor, worker_id, through, now_db)
            if through:
                cursor.execute(
                    f"INSERT INTO {ledger} ({q('key')}, started_at) VALUES "
                    + ", ".join(["(%s, %s)"] * len(through)),
                    [value for _ in through for value in (key, now_db)],
                )
            accepted += through
            if over:
                moments = sorted([*entries, *[now] * len(through)]) or [now]
                for j, task in enumerate(over):
                    due = moments[j % len(moments)] + span * (1 + j // len(moments)) + RETRY_EPSILON
                    cursor.execute(
                        f"UPDATE {ops.table} SET status = {WAITING}, worker_id = '', "
                        "lease_expires_at = NULL, attempts = attempts - %s, started_at = NULL, "
                        "scheduled_at = %s "
                        f"WHERE id = %s AND status = {RUNNING} AND worker_id = %s",
                        [1 if started else 0, ops._dt(due), task.id, worker_id],
                    )
                refused += over
    return accepted, refused


def _mark_started(ops, cursor, worker_id, tasks, now_db):
    """Mark claimed-ahead ``tasks`` started (as Driver.start); return those still held here."""
    ids = [task.id for task in tasks]
    lock = "" if ops.vendor == "sqlite" else " FOR UPDATE"
    cursor.execute(
        f"SELECT id FROM {ops.table} WHERE id IN {_marks(ids)} AND status = {RUNNING} "
        f"AND worker_id = %s AND started_at IS NULL{lock}",
        [*ids, worker_id],
    )
    held = {row[0] for row in cursor.fetchall()}
    if held:
        marks = sorted(held)
        cursor.execute(
            f"UPDATE {ops.table} SET started_at = %s, attempts = attempts + 1 WHERE id IN {_marks(marks)}",
            [now_db, *marks],
        )
    return [task for task in tasks if task.id in held]
