"""``python -m benchmarks.host_worker HOSTNAME [run_autotask options]``: a worker "on another machine".

The big benchmark runs its workers on one machine as if each ran on a host
of its own: the host name a worker puts in its worker id (and so in every
row it claims, in its ``autotask_worker`` row and in PostgreSQL's
``application_name``) is HOSTNAME.
"""

import socket
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m benchmarks.host_worker HOSTNAME [run_autotask options]")
    host = argv.pop(0)
    socket.gethostname = lambda: host
    from django.core.management import execute_from_command_line

    execute_from_command_line(["django", "run_autotask", *argv])


if __name__ == "__main__":
    main()
