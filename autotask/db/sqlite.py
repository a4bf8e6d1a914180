"""SQLite: a single-statement claim; "database is locked" means try again."""

from django.db import OperationalError

from ..task import WAITING
from .base import CLAIM_COLUMNS, DatabaseOps


class SqliteOps(DatabaseOps):
    vendor = "sqlite"
    supports_returning = True  # SQLite 3.35+
    supports_partial_indexes = True
    claim_due_guard = True
    INDEXES = {
        **DatabaseOps.INDEXES,
        # The earliest due time (next_due, the claim's guard) in one probe: the
        # claim indexes lead with the queue or the priority, not the due time.
        "autotask_due_idx": ("scheduled_at", f"status = {WAITING}"),
    }

    def is_transient(self, exc):
        return isinstance(exc, OperationalError) or super().is_transient(exc)

    def claim_statement(self, worker_id, queues, limit, lease_until, now):
        """The claim as (sql, params): one UPDATE over the due selection."""
        # One UPDATE is one short write transaction: SQLite serialises writers,
        # so no other worker can claim the same rows in between.
        inner, inner_params = self.claim_select(queues, limit, now)
        sql = (
            f"UPDATE {self.table} SET {self.claim_set_clause()} WHERE id IN ({inner}) "
            f"RETURNING {', '.join(CLAIM_COLUMNS)}"
        )
        return sql, self.claim_set_params(worker_id, lease_until, now) + inner_params
