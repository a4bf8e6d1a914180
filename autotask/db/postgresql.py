"""PostgreSQL: SKIP LOCKED claims in one statement, LISTEN/NOTIFY wake-ups."""

import logging

from ..conf import conf
from ..models import TaskQueue
from .base import CLAIM_COLUMNS, ClaimedTask, DatabaseOps, Listener

logger = logging.getLogger("autotask")


class PostgresOps(DatabaseOps):
    vendor = "postgresql"
    supports_listen = True
    supports_skip_locked = True
    supports_returning = True
    supports_partial_indexes = True
    json_placeholder = "%s::jsonb"

    @property
    def channel(self):
        # The table name: two projects sharing a server with different task
        # tables never wake each other's workers.
        return TaskQueue._meta.db_table

    def notify(self, cursor, queues):
        # pg_notify inside the enqueue transaction is delivered only on commit,
        # and never when the transaction rolls back.
        for queue in sorted(queues):
            cursor.execute("SELECT pg_notify(%s, %s)", [self.channel, queue])

    def claim(self, worker_id, queues, limit, lease_until, now):
        inner, inner_params = self.claim_select(queues, limit, now, lock=" FOR UPDATE SKIP LOCKED")
        returning = ", ".join(f"t.{column}" for column in CLAIM_COLUMNS)
        sql = (
            f"UPDATE {self.table} AS t SET {self.claim_set_clause()} "
            f"FROM ({inner}) AS due WHERE t.id = due.id RETURNING {returning}"
        )
        params = self.claim_set_params(worker_id, lease_until, now) + inner_params
        with self.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return sorted(map(ClaimedTask.from_row, rows), key=ClaimedTask.run_order)

    def listener(self):
        if not conf.LISTEN:
            return None
        return PostgresListener(self.connection, self.channel)


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
