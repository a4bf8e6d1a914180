"""AUTOTASK_POOLER and AUTOTASK_LISTEN_DATABASE: validated, checked, and what a worker makes of them."""

import io
import logging
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from autotask import checks
from autotask.conf import conf
from autotask.db import checks as db_checks
from autotask.db import pooling


def ids(messages):
    return [m.id for m in messages]


def fake(vendor="postgresql", alias="default", **settings_dict):
    config = {"HOST": "db", "PORT": "5432", "NAME": "site", "OPTIONS": {}, **settings_dict}
    return SimpleNamespace(vendor=vendor, alias=alias, settings_dict=config)


@pytest.fixture
def databases(monkeypatch):
    """Fake connections for the aliases the checks look up: databases(task, listen=...)."""

    from django.conf import settings

    def use(task, **others):
        by_alias = {task.alias: task, **others}
        for alias in others:  # what AUTOTASK_LISTEN_DATABASE is validated against
            monkeypatch.setitem(settings.DATABASES, alias, settings.DATABASES.get(alias, {}))
        monkeypatch.setattr(checks, "_task_connection", lambda: task)
        monkeypatch.setattr(db_checks, "connections", by_alias)
        monkeypatch.setattr(pooling, "connections", by_alias)

    with override_settings(AUTOTASK_POOLER=None, AUTOTASK_LISTEN_DATABASE=None):
        yield use


# -- values -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [("POOLER", "Transaction"), ("POOLER", True), ("POOLER", "statement"), ("LISTEN_DATABASE", "nowhere")],
)
def test_a_bad_value_is_an_error_when_read_and_in_the_checks(name, value):
    with override_settings(**{f"AUTOTASK_{name}": value}):
        with pytest.raises(ImproperlyConfigured, match=f"AUTOTASK_{name} must be"):
            getattr(conf, name)
        errors = [m for m in checks.check_setting_values() if m.id == "autotask.E010"]
        assert len(errors) == 1 and f"AUTOTASK_{name}" in errors[0].msg
        # The other checks leave it to E010 rather than fail.
        assert checks.check_database() == []


@pytest.mark.parametrize("value", [None, "transaction", "session"])
def test_pooler_values(value):
    with override_settings(AUTOTASK_POOLER=value, AUTOTASK_LISTEN_DATABASE=None):
        assert value == conf.POOLER
        assert [m for m in checks.check_setting_values() if m.id == "autotask.E010"] == []


# -- checks -------------------------------------------------------------------


def test_a_pooler_for_another_database_is_an_error(databases):
    databases(fake("mysql"))
    with override_settings(AUTOTASK_POOLER="transaction"):
        assert ids(checks.check_database()) == ["autotask.E080"]


def test_transaction_pooler_without_a_listen_database_warns_that_workers_poll(databases):
    databases(fake(PORT="6432"))
    with override_settings(AUTOTASK_POOLER="transaction"):
        (warning,) = checks.check_database()  # not W012 too: the pooler is declared
        assert warning.id == "autotask.W080" and "look for new tasks every" in warning.msg
        with override_settings(AUTOTASK_LISTEN=False):
            assert checks.check_database() == []
    with override_settings(AUTOTASK_POOLER="session"):  # LISTEN works through a session pooler
        assert checks.check_database() == []


def test_a_direct_listen_database_passes(databases):
    databases(fake(PORT="6432"), listen=fake(alias="listen"))
    with override_settings(AUTOTASK_POOLER="transaction", AUTOTASK_LISTEN_DATABASE="listen"):
        assert checks.check_database() == []


@pytest.mark.parametrize(
    "listen", [fake(alias="listen", PORT="6432"), fake(alias="default", PORT="6432")], ids=["same", "itself"]
)
def test_a_listen_database_through_the_same_pooler_is_an_error(databases, listen):
    databases(fake(PORT="6432"), listen=listen)
    with override_settings(AUTOTASK_POOLER="transaction", AUTOTASK_LISTEN_DATABASE=listen.alias):
        (error,) = checks.check_database()
        assert error.id == "autotask.E082" and "HOST and PORT" in error.hint


@pytest.mark.parametrize("task, listen", [("mysql", "postgresql"), ("postgresql", "mysql")])
def test_a_listen_database_needs_postgresql_on_both_sides(databases, task, listen):
    databases(fake(task), listen=fake(listen, alias="listen"))
    with override_settings(AUTOTASK_LISTEN_DATABASE="listen"):
        assert "autotask.E081" in ids(checks.check_database())


def test_a_listen_database_of_another_name_or_unused_warns(databases):
    databases(fake(PORT="6432"), listen=fake(alias="listen", NAME="other"))
    with override_settings(AUTOTASK_POOLER="transaction", AUTOTASK_LISTEN_DATABASE="listen"):
        assert ids(checks.check_database()) == ["autotask.W081"]
        with override_settings(AUTOTASK_LISTEN=False):
            assert ids(checks.check_database()) == ["autotask.W081", "autotask.W082"]


def test_server_side_prepared_statements_through_a_transaction_pooler_warn(databases):
    databases(fake(OPTIONS={"prepare_threshold": 5}), listen=fake(alias="listen", HOST="server"))
    with override_settings(AUTOTASK_POOLER="transaction", AUTOTASK_LISTEN_DATABASE="listen"):
        (warning,) = checks.check_database()
        assert warning.id == "autotask.W083" and "max_prepared_statements" in warning.hint
    with override_settings(AUTOTASK_POOLER="session"):
        assert checks.check_database() == []


# -- what a worker makes of them ----------------------------------------------


def test_own_session_and_listen_connection(databases):
    task, listen = fake(), fake(alias="listen", HOST="server")
    databases(task, listen=listen)
    with override_settings(AUTOTASK_POOLER=None, AUTOTASK_LISTEN_DATABASE=None):
        _own_session_and_listen_connection(task, listen)


def _own_session_and_listen_connection(task, listen):
    assert pooling.own_session(task, listen=True)
    assert not pooling.own_session(task, listen=False)  # how a pooler was declared before
    assert not pooling.own_session(fake(OPTIONS={"pool": True}), listen=True)
    assert pooling.listen_connection(task) is task
    with override_settings(AUTOTASK_POOLER="transaction"):
        assert not pooling.own_session(task, listen=True)
        assert pooling.listen_connection(task) is None
        with override_settings(AUTOTASK_LISTEN_DATABASE="listen"):
            assert pooling.listen_connection(task) is listen
    with override_settings(AUTOTASK_POOLER="session"):
        assert pooling.own_session(task, listen=True)


@pytest.mark.django_db
def test_a_worker_behind_a_transaction_pooler_keeps_nothing_in_its_session(caplog):
    from django.db import connection

    from autotask.worker.loop import Worker

    with override_settings(AUTOTASK_POOLER=None, AUTOTASK_LISTEN_DATABASE=None):
        direct = Worker(handle_signals=False, listen=True)
    if direct.ops.supports_listen and not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        assert direct.ops.prepare_statements and direct.wakeups.listen
    direct.wakeups.close()
    if not direct.ops.supports_listen:
        pytest.skip("LISTEN and prepared claims are PostgreSQL's")
    pooler = override_settings(AUTOTASK_POOLER="transaction", AUTOTASK_LISTEN_DATABASE=None)
    with pooler, caplog.at_level(logging.WARNING, logger="autotask"):
        pooled = Worker(handle_signals=False, listen=True)
    pooled.wakeups.close()
    assert not pooled.ops.prepare_statements and not pooled.ops.sorts_off
    assert not pooled.wakeups.listen
    assert "cannot LISTEN through the pooler" in caplog.text


@pytest.mark.django_db
def test_autotask_status_says_how_workers_reach_the_database_and_wake():
    from django.core.management import call_command

    from autotask import monitor

    with override_settings(AUTOTASK_POOLER=None, AUTOTASK_LISTEN_DATABASE=None, AUTOTASK_LISTEN=True):
        database = monitor.snapshot().as_dict()["database"]
        listen = "default" if connection.vendor == "postgresql" else "poll"
        assert database == {"alias": "default", "vendor": connection.vendor, "pooler": None, "listen": listen}
        if connection.vendor == "postgresql":
            with override_settings(AUTOTASK_POOLER="transaction"):
                assert monitor.snapshot().as_dict()["database"]["listen"] == "poll"
                out = io.StringIO()
                call_command("autotask_status", "--no-worker-check", stdout=out)
                assert "Database: 'default' (postgresql, through a transaction pooler); workers poll" in (
                    out.getvalue()
                )
    with override_settings(AUTOTASK_LISTEN=False):
        assert monitor.snapshot().as_dict()["database"]["listen"] == "poll"
