"""How a worker process shows what it is: PostgreSQL's application_name and the process title."""

import logging
import os

from django.db import connections

from ..db import get_ops

logger = logging.getLogger("autotask")

# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of application_name.
APPLICATION_NAME_BYTES = 63


def _cut(text, size):
    """The longest prefix of ``text`` that is at most ``size`` bytes in UTF-8."""
    return text.encode()[: max(0, size)].decode(errors="ignore")


def application_name(worker_id, theirs=None):
    """``autotask worker <id>``, after the site's own name if it has one, within 63 bytes.

    The worker id stays whole (it is how a connection is matched to its
    worker): the host name in it is shortened first, then the site's name.
    """
    host, sep, rest = worker_id.rpartition(":")
    host, sep2, pid = host.rpartition(":")
    tail = f"{sep2}{pid}{sep}{rest}"  # ":<pid>:<hex>"
    ours = f"autotask worker {host}{tail}"
    if len(ours.encode()) > APPLICATION_NAME_BYTES:
        room = APPLICATION_NAME_BYTES - len(f"autotask worker {tail}".encode())
        ours = f"autotask worker {_cut(host, room)}{tail}"
    if not theirs:
        return ours
    room = APPLICATION_NAME_BYTES - len(ours.encode()) - 1
    if room <= 0:
        return ours
    return f"{_cut(theirs, room)} {ours}"


def label_connections(worker_id):
    """Give every PostgreSQL connection this process opens from now on the worker's application_name.

    Set in the connection settings, so it holds for the worker's own
    connection, its LISTEN connection and the connections task code opens in
    pool threads. An ``application_name`` of the site's own in ``OPTIONS``
    (or ``$PGAPPNAME``) is kept in front. Connections already open are closed,
    to reopen with the name.
    """
    for alias in connections:
        connection = connections[alias]
        if not get_ops(alias).supports_application_name:
            continue
        # The settings dict every thread's connection to this alias is made from.
        options = connection.settings_dict.setdefault("OPTIONS", {})
        theirs = options.get("application_name") or os.environ.get("PGAPPNAME")
        options["application_name"] = application_name(worker_id, theirs)
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close()


class ProcessTitle:
    """The process title ``autotask worker <id> queues=... (idle|running N)``, with setproctitle.

    Without the optional setproctitle package (``pip install
    autotask[setproctitle]``) the title stays as it was; one DEBUG line says so.
    """

    def __init__(self, worker_id, queues):
        try:
            from setproctitle import setproctitle
        except ImportError:
            logger.debug("setproctitle is not installed: the worker's process title stays as it was")
            setproctitle = None
        self.setproctitle = setproctitle
        self.prefix = f"autotask worker {worker_id} queues={','.join(queues or ['all'])}"
        self.shown = None

    def show(self, state):
        if self.setproctitle is None or state == self.shown:
            return
        self.shown = state
        self.setproctitle(f"{self.prefix} ({state})")
