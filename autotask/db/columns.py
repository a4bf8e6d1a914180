"""The task row, column by column: the one list every raw statement is built from.

Each column is named once here with what the statements need to know of it;
the column groups below (inserted, claimed, written by an outcome) are
derived from it.  Statements pass values as named parameters (``%(name)s``,
dicts keyed by column name), so none depends on the order of a tuple.
"""

from typing import NamedTuple

from ..task import WAITING


class Column(NamedTuple):
    name: str
    pg_type: str  # PostgreSQL's type, the cast of the JSON-recordset inserts and the batched finish
    json: bool = False  # stored as JSON; travels as its text
    new: str | None = None  # SQL literal every new row starts with (None: a parameter)
    inserted: bool = True  # written by an enqueue
    claimed: bool = False  # returned by a claim (see ClaimedTask)


COLUMNS = (
    Column("id", "bigint", inserted=False, claimed=True),
    Column("function", "text", claimed=True),
    Column("kind", "text", claimed=True),
    Column("queue", "text", claimed=True),
    Column("priority", "smallint", claimed=True),
    Column("status", "smallint", new=str(WAITING)),
    Column("args", "text", claimed=True),
    Column("created_at", "timestamptz", claimed=True),
    Column("scheduled_at", "timestamptz", claimed=True),  # claimed: the pickup delay (statistics)
    Column("ttl", "double precision", claimed=True),
    Column("attempts", "integer", new="0", claimed=True),
    Column("max_attempts", "integer", claimed=True),
    Column("options", "jsonb", json=True, claimed=True),
    Column("worker_id", "text", new="''"),
    Column("error_message", "text", new="''"),
    Column("traceback", "text", new="''"),
    Column("history", "jsonb", json=True, new="'[]'", claimed=True),
    Column("schedule_id", "bigint", claimed=True),
    Column("result", "text", inserted=False),
    Column("finished_at", "timestamptz", inserted=False),
    Column("expires_at", "timestamptz", inserted=False),
    Column("started_at", "timestamptz", inserted=False),
    Column("lease_expires_at", "timestamptz", inserted=False),
    # Unique tasks: written only by the keyed insert (Driver.insert_unique), so
    # the plain enqueue's statements stay as they were.
    Column("unique_key", "text", inserted=False),
    Column("unique_scope", "smallint", inserted=False),
    # Written by the running task's worker (Driver.write_reports) and by a
    # workflow's enqueue, never by the plain enqueue, claim or finish.
    Column("progress", "jsonb", json=True, inserted=False),
    Column("metadata", "jsonb", json=True, inserted=False),
    Column("workflow_id", "bigint", inserted=False),
)
COLUMN = {column.name: column for column in COLUMNS}

# Columns written by an enqueue.
INSERT_COLUMNS = tuple(c.name for c in COLUMNS if c.inserted)
# What a keyed insert writes besides INSERT_COLUMNS.
UNIQUE_COLUMNS = ("unique_key", "unique_scope")
# Columns a claim returns (see ClaimedTask.from_row).
CLAIM_COLUMNS = tuple(c.name for c in COLUMNS if c.claimed)
# What every new row starts with, as SQL literals (the one-row INSERT writes them inline).
NEW_ROW_LITERALS = {c.name: c.new for c in COLUMNS if c.inserted and c.new is not None}

# What an outcome writes: the Outcome field and the column it sets.  ``retry_at``
# sets scheduled_at, and leaves it as it is when None.
OUTCOME_COLUMNS = (
    ("status", "status"),
    ("result", "result"),
    ("finished_at", "finished_at"),
    ("expires_at", "expires_at"),
    ("error_message", "error_message"),
    ("traceback", "traceback"),
    ("history", "history"),
    ("retry_at", "scheduled_at"),
)


def outcome_set(mark):
    """The SET list writing an outcome: ``mark(field, column)`` is the SQL of each value."""
    assignments = []
    for name, column in OUTCOME_COLUMNS:
        value = mark(name, COLUMN[column])
        if name == "retry_at":
            value = f"COALESCE({value}, {column})"
        assignments.append(f"{column} = {value}")
    return ", ".join(assignments) + ", lease_expires_at = NULL"


def outcome_values(o, moment, history):
    """An outcome's values, keyed by field: ``moment`` adapts a datetime, ``history`` the history."""
    return {
        "status": o.status,
        "result": o.result,
        "finished_at": moment(o.finished_at) if o.status != WAITING else None,
        "expires_at": moment(o.expires_at) if o.expires_at else None,
        "error_message": o.error_message,
        "traceback": o.traceback,
        "history": history(o.history),
        "retry_at": moment(o.retry_at) if o.retry_at else None,
    }


def pg_record(fields):
    """A json_to_recordset column list for ``fields``: (Outcome field or column, column) pairs."""
    return ", ".join(f"{name} {COLUMN[column].pg_type}" for name, column in fields)
