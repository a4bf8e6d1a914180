"""Fail early, with the fix, when a database the test suite needs is not reachable."""

import os
import socket
import sys
from urllib.parse import urlsplit

SERVERS = {
    "PostgreSQL": os.environ.get("AUTOTASK_TEST_PG", "postgres://postgres@127.0.0.1:5432/autotask"),
    "MariaDB/MySQL": os.environ.get("AUTOTASK_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
}


def reachable(url):
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def main():
    missing = [name for name, url in SERVERS.items() if not reachable(url)]
    for name in missing:
        print(f"{name} is not reachable at {SERVERS[name]}.", file=sys.stderr)
    if missing:
        print(
            "The test suite runs against real databases. Start them with\n"
            "    docker compose up -d\n"
            "(or point AUTOTASK_TEST_PG / AUTOTASK_TEST_MYSQL at your own servers).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
