"""System checks for autotask's configuration."""

import difflib
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.core import checks as django_checks
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from . import tracing
from .conf import (
    COUNT,
    COUNT_OR_NONE,
    DAY_SECONDS,
    DEFAULTS,
    KEEP_SECONDS,
    POOLER_MODES,
    POOLER_VALUES,
    SECONDS_OR_NONE,
    conf,
)
from .db.checks import database_errors, mysql_server_warnings, server_errors
from .definitions import registry
from .definitions.schedules import ScheduledFunction
from .supervisor import worker_executable


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    errors = []
    numeric = (
        "WORKER_MONITOR_INTERVALL",
        "HANDLE_TASK_IDLE_TIME",
        "RETRY_DELAY",
        "CLEAN_INTERVALL",
        "LEASE_SECONDS",
    )
    for name in numeric:
        value = getattr(conf, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(
                Error(
                    f"AUTOTASK_{name} must be a non-negative number of seconds, not {value!r}.",
                    hint=f"Set AUTOTASK_{name} to a number such as {DEFAULTS[name]} (the default).",
                    id="autotask.E001",
                )
            )
    if conf.SERIALIZER not in ("json", "pickle"):
        errors.append(
            Error(
                f"AUTOTASK_SERIALIZER must be 'json' or 'pickle', not {conf.SERIALIZER!r}.",
                hint="Remove the setting to use the JSON codec.",
                id="autotask.E002",
            )
        )
    return errors


def _autotask_task_backends():
    """Return the TASKS aliases whose backend is autotask's."""
    tasks = getattr(settings, "TASKS", None)
    if not isinstance(tasks, dict):
        return []
    return [
        alias
        for alias, config in tasks.items()
        if isinstance(config, dict) and str(config.get("BACKEND", "")).startswith("autotask.")
    ]


def _load_task_backend():
    """Import autotask's tasks backend if TASKS uses it; return the ImportError, if any.

    Importing it imports the tasks framework, which registers the framework's
    own check (it runs each backend's ``check()``) before the checks run.
    """
    if not _autotask_task_backends():
        return None
    try:
        import_module("autotask.backend")
    except ImportError as exc:
        return exc
    return None


_load_task_backend()  # at app loading (ready() imports this module), before any check runs


@register(Tags.compatibility)
def check_task_backend(app_configs=None, **kwargs):
    error = _load_task_backend()
    if error is None:
        return []
    aliases = ", ".join(map(repr, _autotask_task_backends()))
    return [
        Error(
            f"TASKS uses autotask.backend.AutotaskBackend ({aliases}), but Django's tasks "
            f"framework cannot be imported: {error}",
            hint="Use Django 6.0 or later, or install the backport: pip install autotask[django-tasks].",
            id="autotask.E100",
        )
    ]


# -- setting values, database and deployment (ids E010-E019, W010-W019) ----


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _names_list(value):
    return isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)


# name -> (is the value valid, what it must be); the settings check_settings
# covers (E001, E002) are left to it.
def _count_or_none(value):
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


_SETTING_RULES = {
    "IS_ACTIVE": (lambda v: isinstance(v, bool), "True or False"),
    "WORKER_EXECUTABLE": (
        lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
        "None (the running interpreter) or the path of a Python executable",
    ),
    "DATABASE": (lambda v: isinstance(v, str) and v != "", "the alias of a database in DATABASES"),
    "LISTEN": (lambda v: isinstance(v, bool), "True or False"),
    "POOLER": (lambda v: v is None or (isinstance(v, str) and v in POOLER_MODES), POOLER_VALUES),
    "LISTEN_DATABASE": (
        lambda v: v is None or (isinstance(v, str) and v in settings.DATABASES),
        "None or the alias of a database in DATABASES",
    ),
    "CONCURRENCY": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "ASYNC_CONCURRENCY": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, COUNT),
    "QUEUES": (
        lambda v: v is None or (_names_list(v) and len(v) > 0),
        "None (all queues) or a list of queue names",
    ),
    "LEASE_SECONDS": (lambda v: _is_number(v) and v > 0, "a number of seconds > 0"),
    "RETRY_BACKOFF": (lambda v: _is_number(v) and v >= 1, "a number >= 1.0 (1.0: a constant delay)"),
    "RETRY_MAX_DELAY": (lambda v: _is_number(v) and v >= 0, "a number of seconds >= 0"),
    "DEFAULT_QUEUE": (
        lambda v: isinstance(v, str) and 0 < len(v) <= 100,
        "a non-empty queue name of at most 100 characters",
    ),
    "CLEAN_BATCH_SIZE": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "an integer >= 1",
    ),
    "PREFETCH": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "an integer >= 0 (0: claim only as many tasks as there are free slots)",
    ),
    "NON_SERVING_COMMANDS": (_names_list, "a list of management command names"),
    "FAILED_TTL": (lambda v: v is None or (_is_number(v) and 0 <= v < float("inf")), SECONDS_OR_NONE),
    "STATS_KEEP": (lambda v: _is_number(v) and DAY_SECONDS <= v < float("inf"), KEEP_SECONDS),
    "PROCESSES": (_count_or_none, COUNT_OR_NONE),
    "CHILD_MAX_TASKS": (_count_or_none, COUNT_OR_NONE),
    "CHILD_MAX_MEMORY": (_count_or_none, f"{COUNT_OR_NONE} (megabytes)"),
}
_CHECKED_BY_CHECK_SETTINGS = {
    "WORKER_MONITOR_INTERVALL",
    "HANDLE_TASK_IDLE_TIME",
    "RETRY_DELAY",
    "CLEAN_INTERVALL",
    "SERIALIZER",
}


def _rule(name):
    """Return (valid, expected) for a setting; settings added later are held to their default's type."""
    if name in _SETTING_RULES:
        return _SETTING_RULES[name]
    default = DEFAULTS[name]
    if isinstance(default, bool):
        return _SETTING_RULES["IS_ACTIVE"]
    if _is_number(default):
        return (lambda v: _is_number(v) and v >= 0, "a number >= 0")
    if isinstance(default, str):
        return (lambda v: isinstance(v, str), "a string")
    if isinstance(default, list | tuple):
        return (lambda v: isinstance(v, list | tuple), "a list")
    return (lambda v: True, "")


@register(Tags.compatibility)
def check_setting_values(app_configs=None, **kwargs):
    """Every AUTOTASK_* setting has a value of the right type and range; no setting is misspelt."""
    errors = []
    for name in DEFAULTS:
        if name in _CHECKED_BY_CHECK_SETTINGS or not hasattr(settings, f"AUTOTASK_{name}"):
            continue
        value = getattr(settings, f"AUTOTASK_{name}")  # as set: conf raises for some bad values
        if name == "LEASE_SECONDS" and _is_number(value) and value < 0:
            continue  # reported by check_settings (E001)
        valid, expected = _rule(name)
        if not valid(value):
            hint = f"Set AUTOTASK_{name} to {expected}, or remove it for the default ({DEFAULTS[name]!r})."
            if name == "QUEUES" and isinstance(value, str):
                hint = f"Write a list even for one queue: AUTOTASK_QUEUES = [{value!r}]."
            errors.append(
                Error(f"AUTOTASK_{name} must be {expected}, not {value!r}.", hint=hint, id="autotask.E010")
            )
    database = conf.DATABASE
    if isinstance(database, str) and database and database not in settings.DATABASES:
        errors.append(
            Error(
                f"AUTOTASK_DATABASE is {database!r}, which is not in DATABASES.",
                hint=f"Use one of {', '.join(map(repr, settings.DATABASES))}, or remove the setting "
                "(the default is 'default').",
                id="autotask.E011",
            )
        )
    errors.extend(_misspelt_settings())
    return errors


def _misspelt_settings():
    """Warn about AUTOTASK_* settings autotask does not know (the original spells INTERVALL so)."""
    known = {f"AUTOTASK_{name}" for name in DEFAULTS}
    warnings = []
    for name in sorted(n for n in dir(settings) if n.startswith("AUTOTASK_") and n not in known):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = (
            f"Did you mean {close[0]}?" if close else f"autotask's settings are: {', '.join(sorted(known))}."
        )
        warnings.append(
            django_checks.Warning(
                f"{name} is not an autotask setting; it has no effect.", hint=hint, id="autotask.W010"
            )
        )
    return warnings


@register(Tags.compatibility)
def check_installed(app_configs=None, **kwargs):
    """The decorators are in use, so the app (and its table) must be installed."""
    if apps.is_installed("autotask") or not registry.all_definitions():
        return []
    return [
        Error(
            "autotask's decorators are in use but 'autotask' is not in INSTALLED_APPS, so its "
            "table, worker command and checks are missing.",
            hint="Add 'autotask' to INSTALLED_APPS and run 'manage.py migrate'.",
            id="autotask.E012",
        )
    ]


def _task_connection():
    """Return the connection of the task database, or None when the alias is unknown."""
    database = conf.DATABASE
    if not isinstance(database, str) or database not in settings.DATABASES:
        return None  # reported by check_setting_values
    return connections[database]


@register(Tags.compatibility)
def check_database(app_configs=None, **kwargs):
    """The task database is one autotask supports, without connecting to it."""
    connection = _task_connection()
    if connection is None:
        return []
    return database_errors(connection)


@register(Tags.database)
def check_database_server(app_configs=None, databases=None, **kwargs):
    """Checks that need a connection: server version, SQLite's journal mode.

    They run with ``manage.py check --database default`` and before ``migrate``.
    """
    connection = _task_connection()
    if connection is None or not databases or connection.alias not in databases:
        return []
    return server_errors(connection)


@register(Tags.compatibility)
def check_worker_executable(app_configs=None, **kwargs):
    """The worker started beside each Django process needs an interpreter that exists."""
    value = conf.WORKER_EXECUTABLE
    explicit = isinstance(value, str) and value.strip() != ""
    if not explicit and not (value is None and conf.IS_ACTIVE is True and conf.WORKER_AUTOSTART is True):
        return []  # unset and unused, or a wrong type (reported as autotask.E010)
    try:
        worker_executable()
    except ImproperlyConfigured as exc:
        return [
            Error(
                f"No autotask worker can start: {exc}.",
                hint="Point AUTOTASK_WORKER_EXECUTABLE at the project's Python (e.g. the venv's "
                "bin/python), or remove it to use the interpreter running Django.",
                id="autotask.E020",
            )
        ]
    return []


# -- MariaDB/MySQL (ids W030-W039) ----


@register(Tags.database)
def check_mysql_server(app_configs=None, databases=None, **kwargs):
    """A MariaDB/MySQL task database lets concurrent claims skip each other's rows.

    Runs with ``manage.py check --database default`` and before ``migrate``.
    """
    connection = _task_connection()
    if connection is None or connection.alias not in (databases or ()):
        return []
    return mysql_server_warnings(connection)


# -- what needs a worker, and options nothing enforces (ids W040-W049) ----


@register(Tags.compatibility)
def check_worker_needed(app_configs=None, **kwargs):
    """Warn when something waits for a worker that AUTOTASK_IS_ACTIVE=False never starts."""
    if conf.IS_ACTIVE is not False:
        return []  # on (or a wrong type, reported as autotask.E010)
    warnings = []
    backends = _autotask_task_backends()
    if backends:
        warnings.append(
            django_checks.Warning(
                f"TASKS uses autotask's backend ({', '.join(map(repr, backends))}) but AUTOTASK_IS_ACTIVE "
                "is False: no worker starts beside the Django processes, so enqueued tasks wait "
                "until a worker is started by hand.",
                hint="Set AUTOTASK_IS_ACTIVE = True, or run 'manage.py run_autotask' yourself (then add "
                "'autotask.W040' to SILENCED_SYSTEM_CHECKS).",
                id="autotask.W040",
            )
        )
    # (A framework task's schedule is the backend's: a worker started by hand runs it.)
    names = sorted(
        name
        for name, definition in registry.declared_inactive().items()
        if isinstance(definition, ScheduledFunction)
    )
    if names:
        warnings.append(
            django_checks.Warning(
                f"{len(names)} periodic/cron task(s) are declared but AUTOTASK_IS_ACTIVE is False, so "
                f"they are not scheduled and never run: {', '.join(names)}.",
                hint="Set AUTOTASK_IS_ACTIVE = True where the schedules should run.",
                id="autotask.W041",
            )
        )
    return warnings


@register(Tags.compatibility)
def check_unenforced_timeouts(app_configs=None, **kwargs):
    """A time limit on a sync task holds only in a child process: say so unless process mode is set."""
    timeouts = registry.unenforced_timeouts()
    if not timeouts or getattr(settings, "AUTOTASK_PROCESSES", None):
        return []
    listed = ", ".join(f"{name} (timeout={value:g})" for name, value in sorted(timeouts.items()))
    return [
        Error(
            f"timeout= (or soft_timeout=) is set on sync (non-async) task(s) that run in worker "
            f"threads, where no time limit can stop them: {listed}.",
            hint="Use process mode for them: declare them with isolated=True (each runs in a child "
            "process the worker kills at the limit), or set AUTOTASK_PROCESSES to run every task in "
            "child processes; or make the task an async function, or remove the limit.",
            id="autotask.E070",
        )
    ]


# -- optional extras: tracing (ids E060-E069) ----


@register(Tags.compatibility)
def check_tracing(app_configs=None, **kwargs):
    """AUTOTASK_TRACING needs OpenTelemetry (the opentelemetry extra): never a silent no-op."""
    if getattr(settings, "AUTOTASK_TRACING", False) is not True:
        return []  # off, or a wrong type (reported as autotask.E010)
    error = tracing.missing_extra()
    if error is None:
        return []
    return [
        Error(
            f"AUTOTASK_TRACING is on but OpenTelemetry cannot be imported: {error}.",
            hint=f"Install the extra ({tracing.INSTALL_HINT}), or set AUTOTASK_TRACING = False.",
            id="autotask.E060",
        )
    ]
