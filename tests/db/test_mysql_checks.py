"""The MariaDB/MySQL system check: SKIP LOCKED or a warning."""

import pytest
from django.core import checks
from django.db import connection, connections

from autotask.db.checks import mysql_skip_locked_warnings


@pytest.mark.parametrize(
    ("is_mariadb", "version", "warned"),
    [
        (True, (10, 5, 27), True),
        (True, (10, 6, 0), False),
        (True, (11, 4, 2), False),
        (False, (8, 0, 0), True),
        (False, (8, 0, 1), False),
        (False, (8, 4, 3), False),
    ],
)
def test_servers_without_skip_locked_are_warned_about(is_mariadb, version, warned):
    warnings = mysql_skip_locked_warnings(is_mariadb, version)
    assert [w.id for w in warnings] == (["autotask.W030"] if warned else [])
    if warned:
        assert ".".join(map(str, version)) in warnings[0].msg
        assert "Upgrade" in warnings[0].hint


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "mysql", reason="mysql only")
def test_check_runs_against_the_real_server(monkeypatch):
    # This server (MariaDB 10.6+ / MySQL 8) has SKIP LOCKED: the check is quiet...
    assert connection.features.has_select_for_update_skip_locked
    messages = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    assert not [m for m in messages if m.id == "autotask.W030"]
    # ...and speaks up when the server reports an older version.
    old = (10, 5, 9) if connections["default"].mysql_is_mariadb else (8, 0, 0)
    monkeypatch.setattr(connections["default"], "mysql_version", old)
    messages = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    assert [m.id for m in messages if m.id.startswith("autotask.W03")] == ["autotask.W030"]


def test_check_needs_a_database_to_be_named():
    # ...and like Django's own database checks, stays away from the server unless asked:
    # a plain `manage.py check` names no database.
    messages = checks.run_checks()
    assert not [m for m in messages if m.id == "autotask.W030"]
