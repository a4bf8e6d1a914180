"""Imported once by the server that forks a worker's child processes (its preload).

Django is set up here, once: every child forked from this process starts with
the apps loaded, in milliseconds.  The server leaves without running the
project's exit handlers (they belong to the worker, not to this helper).  It
ignores SIGTERM, which a service manager may send to every process of the
worker's group: the worker decides how its children end (a graceful stop lets
their tasks finish), and the server leaves when the worker does.
"""

import atexit
import os
import signal
import sys
import traceback


def _prepare():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import django

        django.setup()
    except Exception:  # noqa: BLE001 - each child sets Django up itself and reports the error
        traceback.print_exc(file=sys.stderr)
    # Registered last, so run first: no handler registered by the apps runs here.
    atexit.register(os._exit, 0)


_prepare()
