"""Schema steps whose SQL depends on the database, called by autotask's migrations."""


def _schedule_constraints(schema_editor, table):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: info
        for name, info in constraints.items()
        if info["columns"] == ["schedule_id"] and not info["primary_key"] and not info["unique"]
    }


def schedule_runs_forwards(schema_editor, table, index):
    """Migration 0003 forwards: the partial index of scheduled runs in, the foreign key out."""
    connection = schema_editor.connection
    quote = schema_editor.quote_name
    if connection.vendor != "mysql":  # MySQL has no partial index: it keeps the constraint's own
        # A write first.  On SQLite it takes the write lock, so no worker can
        # commit between the reads below and the writes after them: SQLite
        # refuses a write on a snapshot that another commit has made stale
        # ("database is locked", at once).
        schema_editor.execute(
            f"CREATE INDEX {quote(index)} ON {quote(table)} (schedule_id) WHERE schedule_id IS NOT NULL"
        )
    found = _schedule_constraints(schema_editor, table)
    for name, info in found.items():
        if info["foreign_key"] and connection.vendor != "sqlite":  # SQLite cannot drop one (NULL is free)
            schema_editor.execute(schema_editor.sql_delete_fk % {"table": quote(table), "name": quote(name)})
        elif info["index"] and not info["foreign_key"] and name != index and connection.vendor != "mysql":
            sql = schema_editor.sql_delete_index % {"table": quote(table), "name": quote(name)}
            schema_editor.execute(sql)


def schedule_runs_backwards(schema_editor, table, target, index):
    """Migration 0003 backwards: the foreign key and its plain index back."""
    connection = schema_editor.connection
    quote = schema_editor.quote_name
    if connection.vendor != "mysql":
        schema_editor.execute(schema_editor.sql_delete_index % {"table": quote(table), "name": quote(index)})
        schema_editor.execute(f"CREATE INDEX {quote(table + '_schedule_id')} ON {quote(table)} (schedule_id)")
    if connection.vendor != "sqlite":
        schema_editor.execute(
            schema_editor.sql_create_fk
            % {
                "table": quote(table),
                "name": quote(table + "_schedule_id_fk"),
                "column": "schedule_id",
                "to_table": quote(target),
                "to_column": "id",
                "on_delete_db": "",
                "deferrable": connection.ops.deferrable_sql(),
            }
        )
