"""Schedules stored by the process that declares them, at the first safe moment.

Whichever process declares a schedule stores it (a web process whose view
imports the module, a script, ``manage.py shell``): at once when Django is set
up and the task database is not inside a transaction, else at the start or end
of the next request, else when the process exits.  The app's ``ready()``
imports this module; a schedule declared later is stored through the hook it
adds to :mod:`autotask.definitions.schedules`.
"""

import asyncio
import atexit
import logging
import sys
import threading
import time

from django.apps import apps
from django.core.signals import request_finished, request_started
from django.db import connections, transaction
from django.utils import timezone

from ..conf import conf
from ..db import hint_for
from ..definitions.schedules import _schedules, _unstored, declared_hooks
from ..maintenance.scheduling import _write
from ..timeutil import aware_utc as _aware
from . import management_command

logger = logging.getLogger("autotask")

STORE_RETRY_SECONDS = 10.0  # after a failed attempt to store, wait this long before the next


# Management commands whose declarations are not stored: they build, migrate or
# test the database (it may not be migrated yet, or not be the site's), or they
# are the worker, which stores what it declares at its first tick.
NO_STORE_COMMANDS = frozenset(
    {
        "check", "collectstatic", "compilemessages", "createcachetable", "dbshell", "diffsettings",
        "flush", "help", "inspectdb", "makemessages", "makemigrations", "migrate", "optimizemigration",
        "showmigrations", "sqlflush", "sqlmigrate", "squashmigrations", "startapp", "startproject",
        "test", "testserver", "version", "run_autotask",
    }
)  # fmt: skip


_store_lock = threading.Lock()


_store_state = {"retry_at": 0.0, "logged": None}  # after a failure: when to try again, what was logged


def store_declared(serving=False):
    """Store the schedules declared here and not stored yet, if this is a safe moment.

    ``serving``: called at the start or end of a request.  Return True when
    nothing is left to store.  Never raises: a failure is logged, and the
    schedules stay pending for the next safe moment.
    """
    if not _unstored:
        return True
    reason = _cannot_store_now(serving)
    if reason is not None:
        logger.debug("schedules declared here are not stored yet: %s", reason)
        return False
    if time.monotonic() < _store_state["retry_at"]:
        return False
    alias = conf.DATABASE
    with _store_lock:
        _unstored.intersection_update(_schedules)  # forget schedules undeclared since (tests)
        names = sorted(_unstored)
        if not names:
            return True
        try:
            with transaction.atomic(using=alias):
                _write(names, alias, _aware(timezone.now()))
        except Exception as exc:  # noqa: BLE001 - the importing code must not fail because of it
            _store_failed(names, exc)
            return False
        _unstored.difference_update(names)
        _store_state.update(retry_at=0.0, logged=None)
    logger.info("stored the schedules declared in this process: %s", ", ".join(names))
    return True


def _cannot_store_now(serving):
    """Return why this process must not write its schedules now, or None when it may."""
    if not apps.ready:
        return "Django is still loading its apps"
    if not serving:
        if "pytest" in sys.modules:
            # Test modules are imported before the test database exists.
            return "a test run stores schedules only while a test serves a request"
        found = management_command()
        if found is not None and found[0] in NO_STORE_COMMANDS:
            return f"'manage.py {found[0]}' does not store schedules"
    alias = conf.DATABASE
    if alias not in connections.settings:
        return f"AUTOTASK_DATABASE {alias!r} is not in DATABASES"
    if connections[alias].in_atomic_block:
        return "the task database is inside a transaction here (a rollback would undo the schedule)"
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return "this thread runs an event loop (the ORM is synchronous)"


def _store_failed(names, exc):
    _store_state["retry_at"] = time.monotonic() + STORE_RETRY_SECONDS
    message = f"{exc}{hint_for(exc)}"
    if _store_state["logged"] == message:
        return  # said already; tried again quietly
    _store_state["logged"] = message
    logger.warning(
        "could not store the schedules declared in this process (%s): %s; trying again at the next "
        "request and when the process exits",
        ", ".join(names),
        message,
    )


def _store_on_request(sender, **kwargs):
    if not _unstored:
        return
    alias = conf.DATABASE
    opened = alias in connections.settings and connections[alias].connection is None
    store_declared(serving=True)
    if opened and kwargs.get("signal") is request_finished:
        connections[alias].close()  # Django closed the request's connections before this receiver


def _store_at_exit():
    """Last chance: store what is still pending, or say loudly that it never was."""
    pending = _unstored & set(_schedules)
    if not pending:
        return
    _store_state["retry_at"] = 0.0
    if store_declared():
        return
    reason = _cannot_store_now(serving=False)
    if reason is not None and ("test run" in reason or "does not store" in reason):
        return  # by design: the processes that serve store them
    logger.error(
        "the schedules declared in this process were never stored (%s): %s. They run only if a "
        "worker declares them too; declare them in a module every process imports (e.g. from an "
        "AppConfig.ready()), or run this process when the task database is reachable.",
        ", ".join(sorted(pending)),
        reason or _store_state["logged"],
    )


request_started.connect(_store_on_request, dispatch_uid="autotask.scheduler.store_on_request_started")
request_finished.connect(_store_on_request, dispatch_uid="autotask.scheduler.store_on_request_finished")
atexit.register(_store_at_exit)
declared_hooks.append(store_declared)

__all__ = ["store_declared"]
