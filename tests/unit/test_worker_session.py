"""A worker prepares statements and changes session settings only in a session nothing else shares."""

import pytest
from django.db import connections

from autotask.worker import Worker


@pytest.mark.parametrize(
    ("listen", "pool", "owned"),
    [(True, None, True), (True, True, False), (True, {"min_size": 2}, False), (False, None, False)],
)
def test_the_worker_owns_its_session_only_where_nothing_shares_it(monkeypatch, listen, pool, owned):
    # LISTEN off means a pooler in transaction mode may be in between; Django's
    # own pool hands a closed connection's session to the next thread.
    options = dict(connections["default"].settings_dict.get("OPTIONS", {}))
    if pool:
        options["pool"] = pool
    monkeypatch.setitem(connections["default"].settings_dict, "OPTIONS", options)
    worker = Worker(concurrency=1, handle_signals=False, listen=listen)
    try:
        assert worker.ops.prepare_statements is owned
    finally:
        worker.wakeups.close()
