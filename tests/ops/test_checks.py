"""System checks: every misconfiguration is reported with a fix hint."""

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as SqliteWrapper
from django.test import override_settings

from autotask import checks
from autotask.conf import DEFAULTS
from tests.app import tasks
from tests.conftest import ROOT


def ids(messages):
    return [m.id for m in messages]


def only(messages):
    assert len(messages) == 1, messages
    return messages[0]


# -- setting values ------------------------------------------------------------


@pytest.mark.django_db
def test_the_test_settings_pass_every_check():
    assert checks.check_setting_values() == []
    assert checks.check_installed() == []
    assert checks.check_database() == []
    assert checks.check_database_server(databases=["default"]) == []


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("IS_ACTIVE", "yes", "True or False"),
        ("WORKER_EXECUTABLE", 3, "the path of a Python executable"),
        ("WORKER_EXECUTABLE", "  ", "the path of a Python executable"),
        ("DATABASE", None, "the alias of a database"),
        ("LISTEN", 1, "True or False"),
        ("CONCURRENCY", 0, "an integer >= 1"),
        ("CONCURRENCY", 2.5, "an integer >= 1"),
        ("CONCURRENCY", True, "an integer >= 1"),
        ("QUEUES", [], "a list of queue names"),
        ("QUEUES", ["mail", ""], "a list of queue names"),
        ("LEASE_SECONDS", 0, "a number of seconds > 0"),
        ("RETRY_BACKOFF", 0.5, "a number >= 1.0"),
        ("RETRY_MAX_DELAY", -1, "a number of seconds >= 0"),
        ("RETRY_MAX_DELAY", float("nan"), "a number of seconds >= 0"),
        ("DEFAULT_QUEUE", "", "a non-empty queue name"),
        ("DEFAULT_QUEUE", "q" * 101, "a non-empty queue name"),
        ("CLEAN_BATCH_SIZE", "1000", "an integer >= 1"),
        ("NON_SERVING_COMMANDS", "shell", "a list of management command names"),
        ("FAILED_TTL", "7d", "None (keep until deleted) or a number of seconds >= 0"),
        ("FAILED_TTL", -1, "None (keep until deleted) or a number of seconds >= 0"),
        ("FAILED_TTL", float("inf"), "None (keep until deleted) or a number of seconds >= 0"),
        ("STATS_KEEP", 3600, "a number of seconds >= 86400"),
        ("STATS_KEEP", "2d", "a number of seconds >= 86400"),
        ("STATS_KEEP", None, "a number of seconds >= 86400"),
    ],
)
def test_invalid_setting_values(name, value, expected):
    with override_settings(**{f"AUTOTASK_{name}": value}):
        error = only(checks.check_setting_values())
    assert error.id == "autotask.E010"
    assert error.msg.startswith(f"AUTOTASK_{name} must be ") and expected in error.msg
    assert error.msg.endswith(f", not {value!r}.")
    assert error.hint.startswith(f"Set AUTOTASK_{name} to ")


@pytest.mark.parametrize(
    "name, value",
    [
        ("IS_ACTIVE", False),
        ("WORKER_EXECUTABLE", None),
        ("WORKER_EXECUTABLE", "/usr/bin/python3"),
        ("CONCURRENCY", 8),
        ("QUEUES", ("mail", "reports")),
        ("QUEUES", None),
        ("LEASE_SECONDS", 0.5),
        ("RETRY_BACKOFF", 1),
        ("NON_SERVING_COMMANDS", ["collectstatic"]),
        ("FAILED_TTL", None),
        ("FAILED_TTL", 0),
        ("FAILED_TTL", 86400.5),
        ("STATS_KEEP", 86400),
        ("STATS_KEEP", 7 * 86400.0),
    ],
)
def test_valid_setting_values(name, value):
    with override_settings(**{f"AUTOTASK_{name}": value}):
        assert checks.check_setting_values() == []


def test_every_setting_is_type_checked():
    """Settings without a rule of their own are held to their default's type."""
    for name in sorted(set(DEFAULTS) - checks._CHECKED_BY_CHECK_SETTINGS):
        with override_settings(**{f"AUTOTASK_{name}": object()}):
            assert ids(checks.check_setting_values()) == ["autotask.E010"], name
        with override_settings(**{f"AUTOTASK_{name}": DEFAULTS[name]}):
            assert checks.check_setting_values() == [], name


def test_a_single_queue_name_gets_a_precise_hint():
    with override_settings(AUTOTASK_QUEUES="mail"):
        error = only(checks.check_setting_values())
    assert error.hint == "Write a list even for one queue: AUTOTASK_QUEUES = ['mail']."


def test_negative_lease_is_left_to_check_settings():
    with override_settings(AUTOTASK_LEASE_SECONDS=-1):
        assert checks.check_setting_values() == []
        assert ids(checks.check_settings()) == ["autotask.E001"]


def test_unknown_database_alias():
    with override_settings(AUTOTASK_DATABASE="tasks"):
        error = only(checks.check_setting_values())
        assert checks.check_database() == []  # reported once, here
    assert error.id == "autotask.E011"
    assert error.msg == "AUTOTASK_DATABASE is 'tasks', which is not in DATABASES."
    assert "Use one of 'default'" in error.hint


def test_misspelt_setting_is_a_warning_with_the_right_spelling():
    with override_settings(AUTOTASK_WORKER_MONITOR_INTERVAL=5, AUTOTASK_FROBNICATE=1):
        warnings = checks.check_setting_values()
    assert ids(warnings) == ["autotask.W010", "autotask.W010"]
    frob, monitor = warnings
    assert monitor.msg == "AUTOTASK_WORKER_MONITOR_INTERVAL is not an autotask setting; it has no effect."
    assert monitor.hint == "Did you mean AUTOTASK_WORKER_MONITOR_INTERVALL?"
    assert "AUTOTASK_FROBNICATE" in frob.msg and "AUTOTASK_IS_ACTIVE" in frob.hint


# -- the app itself ------------------------------------------------------------


def test_decorators_without_the_app_installed():
    installed = [app for app in settings.INSTALLED_APPS if app != "autotask"]
    with override_settings(INSTALLED_APPS=installed):
        error = only(checks.check_installed())
    assert error.id == "autotask.E012"
    assert error.hint == "Add 'autotask' to INSTALLED_APPS and run 'manage.py migrate'."


def check_project(tmp_path, apps, is_active, tasks_code):
    """Run ``manage.py check`` in a project whose app ``shop`` has ``tasks_code``."""
    (tmp_path / "site_settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "x"
            INSTALLED_APPS = {["django.contrib.contenttypes", *apps, "shop"]!r}
            DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
            AUTOTASK_IS_ACTIVE = {is_active!r}
            """
        )
    )
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    # Task modules imported at start-up (here by the app's models) are seen by the check.
    (shop / "models.py").write_text("from . import tasks  # noqa\n")
    (shop / "tasks.py").write_text(textwrap.dedent(tasks_code))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "site_settings", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    return subprocess.run(
        [sys.executable, "-m", "django", "check"], env=env, capture_output=True, text=True, timeout=60
    )


def test_manage_py_check_reports_the_missing_app(tmp_path):
    """In a real project: the decorators alone register the check that reports it."""
    result = check_project(
        tmp_path, [], True, "from autotask.tasks import delayed_task\n\n@delayed_task\ndef job():\n    pass\n"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "autotask.E012" in result.stderr and "Add 'autotask' to INSTALLED_APPS" in result.stderr


# -- databases -------------------------------------------------------------------


def fake_connection(vendor, **attrs):
    defaults = {"alias": "default", "settings_dict": {"HOST": "db", "PORT": "5432"}}
    return SimpleNamespace(vendor=vendor, **{**defaults, **attrs})


@pytest.fixture
def task_connection(monkeypatch):
    def use(conn):
        monkeypatch.setattr(checks, "_task_connection", lambda: conn)

    # A fake task database: the pooler settings of a run through PgBouncer do not apply to it.
    with override_settings(AUTOTASK_POOLER=None, AUTOTASK_LISTEN_DATABASE=None):
        yield use


def test_unsupported_database(task_connection):
    task_connection(fake_connection("oracle"))
    error = only(checks.check_database())
    assert error.id == "autotask.E013"
    assert "does not support the 'oracle' database" in error.msg
    assert "PostgreSQL, SQLite or MariaDB/MySQL" in error.hint


@pytest.mark.parametrize("version, expected", [((3, 34, 1), ["autotask.E014"]), ((3, 35, 0), [])])
def test_old_sqlite(task_connection, version, expected):
    database = SimpleNamespace(sqlite_version_info=version, sqlite_version=".".join(map(str, version)))
    task_connection(fake_connection("sqlite", Database=database))
    messages = checks.check_database()
    assert ids(messages) == expected
    if messages:
        assert "SQLite 3.35 or later" in messages[0].msg and "3.34.1" in messages[0].msg


@pytest.mark.parametrize("version, expected", [(120015, ["autotask.E015"]), (130000, []), (170002, [])])
def test_old_postgresql(task_connection, version, expected):
    task_connection(fake_connection("postgresql", pg_version=version))
    assert ids(checks.check_database_server(databases=["default"])) == expected
    # Without database access (plain 'manage.py check') the server is not asked.
    assert checks.check_database_server(databases=None) == []


@pytest.mark.parametrize(
    "settings_dict, reason",
    [
        ({"HOST": "db", "PORT": "6432"}, "PORT is 6432"),
        ({"HOST": "db", "PORT": 6432}, "PORT is 6432"),
        ({"HOST": "db", "PORT": "", "DISABLE_SERVER_SIDE_CURSORS": True}, "DISABLE_SERVER_SIDE_CURSORS"),
        ({"HOST": "aws-0-eu.pooler.supabase.com", "PORT": "5432"}, "names a connection pooler"),
        ({"HOST": "pgbouncer.internal", "PORT": ""}, "names a connection pooler"),
    ],
)
def test_listen_behind_a_pooler(task_connection, settings_dict, reason):
    task_connection(fake_connection("postgresql", settings_dict=settings_dict))
    warning = only(checks.check_database())
    assert warning.id == "autotask.W012" and reason in warning.msg
    assert warning.hint.startswith("Set AUTOTASK_POOLER = 'transaction'")
    with override_settings(AUTOTASK_LISTEN=False):
        assert checks.check_database() == []
    with override_settings(AUTOTASK_POOLER="session"):  # said how it is reached: no guessing
        assert checks.check_database() == []


def test_direct_postgresql_connection_has_no_pooler_warning(task_connection):
    task_connection(fake_connection("postgresql"))
    assert checks.check_database() == []


def sqlite_file(path, journal_mode):
    """A real SQLite connection on its own file with the given journal mode."""
    wrapper = SqliteWrapper({**connection.settings_dict, "NAME": str(path), "OPTIONS": {}}, alias="other")
    with wrapper.cursor() as cursor:
        cursor.execute(f"PRAGMA journal_mode={journal_mode}")
    return wrapper


@pytest.mark.parametrize("journal_mode, expected", [("delete", ["autotask.W011"]), ("wal", [])])
def test_sqlite_without_wal(task_connection, tmp_path, journal_mode, expected, django_db_blocker):
    django_db_blocker.unblock()
    wrapper = sqlite_file(tmp_path / "tasks.sqlite3", journal_mode)
    task_connection(wrapper)
    try:
        messages = checks.check_database_server(databases=["other"])
        assert ids(messages) == expected
        if messages:
            assert "journal mode 'delete'" in messages[0].msg
            assert "PRAGMA journal_mode=WAL" in messages[0].hint
        # A single worker thread with autotask inactive: no concurrent writers.
        with override_settings(AUTOTASK_IS_ACTIVE=False, AUTOTASK_CONCURRENCY=1):
            assert checks.check_database_server(databases=["other"]) == []
    finally:
        wrapper.close()
        django_db_blocker.restore()


# -- what needs a worker, and timeouts nothing enforces ----------------------------


def test_tasks_backend_while_inactive_warns():
    backend = {"default": {"BACKEND": "autotask.backend.AutotaskBackend"}}
    with override_settings(AUTOTASK_IS_ACTIVE=False, TASKS=backend):
        warning = only([w for w in checks.check_worker_needed() if w.id == "autotask.W040"])
    assert warning.id == "autotask.W040" and "'default'" in warning.msg
    assert "AUTOTASK_IS_ACTIVE = True" in warning.hint and "run_autotask" in warning.hint
    with override_settings(AUTOTASK_IS_ACTIVE=True, TASKS=backend):
        assert checks.check_worker_needed() == []
    with override_settings(AUTOTASK_IS_ACTIVE=False, TASKS={}):
        assert "autotask.W040" not in [w.id for w in checks.check_worker_needed()]


def test_timeout_on_a_sync_task_set_per_call_is_an_error_in_thread_mode(monkeypatch):
    from autotask.definitions import registry

    monkeypatch.setattr(registry, "_unenforced_timeouts", {})
    assert checks.check_unenforced_timeouts() == []
    tasks.add.using(timeout=5)
    error = only(checks.check_unenforced_timeouts())
    assert error.id == "autotask.E070" and "tests.app.tasks.add (timeout=5)" in error.msg
    assert "isolated=True" in error.hint and "AUTOTASK_PROCESSES" in error.hint
    with override_settings(AUTOTASK_PROCESSES=2):
        assert checks.check_unenforced_timeouts() == []  # process mode: every task's limit holds


def test_limits_on_isolated_or_async_tasks_pass_the_check(monkeypatch):
    from autotask.definitions import registry

    monkeypatch.setattr(registry, "_unenforced_timeouts", {})
    tasks.add.using(timeout=5, isolated=True)
    tasks.add.using(soft_timeout=1, timeout=5, isolated=True)
    tasks.async_add.using(timeout=5)
    assert checks.check_unenforced_timeouts() == []
    tasks.add.using(soft_timeout=2)
    assert "tests.app.tasks.add (timeout=2)" in only(checks.check_unenforced_timeouts()).msg


def test_inactive_schedules_and_sync_timeouts_in_a_real_project(tmp_path):
    """manage.py check: schedules declared while inactive never run; timeout= on sync tasks."""
    result = check_project(
        tmp_path,
        ["autotask"],
        False,
        """
        from autotask.tasks import cron_task, delayed_task, periodic_task

        @periodic_task(seconds=60)
        def tick():
            pass

        @cron_task(cron="0 3 * * *")
        def nightly():
            pass

        @delayed_task(timeout=10)
        def slow():
            pass

        @delayed_task(timeout=10)
        async def bounded():
            pass

        @delayed_task(timeout=10, isolated=True)
        def in_a_child():
            pass
        """,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # the time limit nothing could enforce is an error
    assert "autotask.W041" in output and "shop.tasks.nightly, shop.tasks.tick" in output
    assert "autotask.E070" in output and "shop.tasks.slow (timeout=10)" in output
    assert "bounded" not in output and "in_a_child" not in output


def test_a_bad_failed_ttl_is_refused_when_read():
    from django.core.exceptions import ImproperlyConfigured

    from autotask.conf import conf

    with override_settings(AUTOTASK_FAILED_TTL="7d"), pytest.raises(ImproperlyConfigured, match="FAILED_TTL"):
        _ = conf.FAILED_TTL
