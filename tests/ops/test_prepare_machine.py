"""scripts/prepare_test_machine.sh decides what to install and start from what the machine has.

Every tool it calls is faked on a PATH of its own, so these tests install and start nothing.
"""

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_test_machine.sh"
REAL_TOOLS = ["bash", "awk", "sleep", "env", "dirname", "cat", "true", "mkdir", "rm"]


def _fake(bindir, name, body="exit 0"):
    path = bindir / name
    path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$FAKE_LOG"\n{body}\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def machine(tmp_path):
    """A fake machine: root, apt-get, nothing installed, no database reachable."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in REAL_TOOLS:
        os.symlink(shutil.which(tool), bindir / tool)
    log = tmp_path / "calls.log"
    log.touch()
    _fake(bindir, "id", "echo 0")
    _fake(bindir, "apt-get")
    _fake(bindir, "python3")
    _fake(bindir, "chown")
    closed = []
    for _ in range(3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed.append(sock.getsockname()[1])
    env = {
        "PATH": str(bindir),
        "FAKE_LOG": str(log),
        "AUTOTASK_TEST_PG": f"postgres://postgres@127.0.0.1:{closed[0]}/autotask",
        "AUTOTASK_TEST_MYSQL": f"mysql://root@127.0.0.1:{closed[1]}/test",
        "MARIADBD": str(tmp_path / "no-mariadbd"),
        "AUTOTASK_TEST_PGBOUNCER": f"postgres://postgres@127.0.0.1:{closed[2]}/autotask",
        "PGBOUNCER": str(tmp_path / "no-pgbouncer"),
        "PGBOUNCER_DIR": str(tmp_path / "pgbouncer"),
        "PREPARE_WAIT_SECONDS": "0",
    }

    class Machine:
        def __init__(self):
            self.bindir, self.env, self.ports, self.tmp = bindir, env, closed, tmp_path

        def fake(self, name, body="exit 0"):
            return _fake(bindir, name, body)

        def run(self, *args):
            return subprocess.run(
                ["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=60
            )

        def calls(self):
            return log.read_text().splitlines()

        def listen(self, which):
            """Make the PostgreSQL (0), MariaDB (1) or PgBouncer (2) port reachable."""
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.ports[which]))
            sock.listen(8)
            self.sockets.append(sock)

        def installed(self):
            """Every package present: pkg-config finds the client library, Chromium on the path."""
            self.fake("pkg-config")
            self.fake("chromium")
            self.fake("chromedriver")
            self.env["PGBOUNCER"] = str(self.fake("pgbouncer"))

    m = Machine()
    m.sockets = []
    yield m
    for sock in m.sockets:
        sock.close()


def test_root_installs_missing_packages_with_apt(machine):
    machine.listen(0)
    machine.listen(1)
    machine.listen(2)  # a PgBouncer already answers: none is installed
    machine.fake("psql", "echo 1")
    result = machine.run()
    assert result.returncode == 0, result.stderr
    calls = [c for c in machine.calls() if c.startswith("apt-get")]
    assert calls == [
        "apt-get update -qq",
        "apt-get install -y -qq libmariadb-dev pkg-config chromium chromium-driver",
    ]


def test_without_root_or_sudo_it_names_the_packages_and_stops(machine):
    machine.fake("id", "echo 1000")
    machine.fake("sudo", "exit 1")  # a password would be needed
    result = machine.run()
    assert result.returncode == 1
    assert "sudo apt-get install libmariadb-dev pkg-config chromium chromium-driver" in result.stderr
    assert "PostgreSQL is not reachable" in result.stderr
    assert "MariaDB/MySQL is not reachable" in result.stderr
    assert "docker compose up -d" in result.stderr
    assert not [c for c in machine.calls() if c.startswith("apt-get")]


def test_passwordless_sudo_installs(machine):
    machine.fake("id", "echo 1000")
    machine.fake("sudo", 'exec "${@:2}"')  # sudo -n CMD...
    machine.listen(0)
    machine.listen(1)
    machine.listen(2)
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y -qq libmariadb-dev pkg-config chromium chromium-driver" in machine.calls()


def test_failed_install_stops(machine):
    machine.fake("apt-get", "exit 100")
    machine.listen(0)
    machine.listen(1)
    result = machine.run()
    assert result.returncode == 1
    assert "apt-get could not install" in result.stderr


def test_installed_but_stopped_servers_are_started(machine):
    machine.installed()
    machine.fake("pg_lsclusters", f'echo "15 main {machine.ports[0]} down postgres /var/lib/x /var/log/x"')
    machine.fake("pg_ctlcluster")
    machine.fake("start-stop-daemon")
    mariadbd = machine.fake("mariadbd")
    machine.env["MARIADBD"] = str(mariadbd)
    result = machine.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would run: pg_ctlcluster --skip-systemctl-redirect 15 main start" in result.stdout
    assert f"would run: start-stop-daemon --start --oknodo --background --exec {mariadbd}" in result.stdout
    changing = ("apt-get", "pg_ctlcluster", "start-stop-daemon", "psql")
    assert not [c for c in machine.calls() if c.startswith(changing)]  # a dry run changes nothing

    # For real: the fakes start nothing, so the script waits, then stops with the reason.
    result = machine.run()
    assert result.returncode == 1
    assert "PostgreSQL cluster 15 main did not start" in result.stderr
    assert "MariaDB" in result.stderr and "did not start" in result.stderr
    assert "pg_ctlcluster --skip-systemctl-redirect 15 main start" in machine.calls()


def test_a_remote_server_is_never_started(machine):
    machine.installed()
    machine.env["AUTOTASK_TEST_PG"] = "postgres://u:pw@192.0.2.1:1/autotask"  # TEST-NET: unreachable
    machine.fake("pg_lsclusters", 'echo "15 main 1 down postgres /var/lib/x /var/log/x"')
    machine.fake("pg_ctlcluster")
    machine.listen(1)
    result = machine.run()
    assert result.returncode == 1
    assert "PostgreSQL is not reachable at 192.0.2.1:1" in result.stderr
    assert not [c for c in machine.calls() if c.startswith("pg_ctlcluster")]


def test_ready_machine_creates_the_database_and_changes_nothing_else(machine):
    machine.installed()
    machine.listen(0)
    machine.listen(1)
    machine.listen(2)
    machine.fake("psql", 'case "$*" in *SELECT*) echo "";; esac')  # the database does not exist
    result = machine.run()
    assert result.returncode == 0, result.stderr
    calls = machine.calls()
    assert any('CREATE DATABASE "autotask"' in c for c in calls)
    assert not [
        c for c in calls if c.startswith(("apt-get", "pg_ctlcluster", "start-stop-daemon", "pgbouncer"))
    ]


def test_pgbouncer_is_installed_then_started_in_transaction_mode(machine):
    machine.listen(0)
    machine.listen(1)
    machine.fake("psql", "echo 1")
    result = machine.run()
    assert "apt-get install -y -qq libmariadb-dev pkg-config chromium chromium-driver pgbouncer" in (
        machine.calls()
    )
    # The fake apt-get installed nothing: the script says so rather than carry on.
    assert result.returncode == 1 and "PgBouncer is not installed" in result.stderr

    machine.installed()
    result = machine.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"run: {machine.env['PGBOUNCER']} -u postgres -d" in result.stdout
    assert not [c for c in machine.calls() if c.startswith("pgbouncer")]  # a dry run starts nothing

    result = machine.run()
    config = machine.tmp / "pgbouncer" / "pgbouncer.ini"
    assert f"pgbouncer -u postgres -d {config}" in machine.calls()
    text = config.read_text()
    assert "pool_mode = transaction" in text
    assert f"* = host=127.0.0.1 port={machine.ports[0]}" in text
    assert f"listen_port = {machine.ports[2]}" in text
    assert '"postgres" ""' in (machine.tmp / "pgbouncer" / "userlist.txt").read_text()
    # The fake starts nothing: the script waits, then stops with the reason.
    assert result.returncode == 1 and "PgBouncer did not start" in result.stderr


def test_a_stale_pgbouncer_pid_file_is_removed_before_starting(machine):
    machine.installed()
    machine.listen(0)
    machine.listen(1)
    machine.fake("psql", "echo 1")
    directory = machine.tmp / "pgbouncer"
    directory.mkdir()
    pidfile = directory / "pgbouncer.pid"
    pidfile.write_text("2147483646\n")  # above any pid the kernel hands out: nobody runs there
    result = machine.run()
    assert "removing the stale pid file" in result.stdout
    assert not pidfile.exists()
    assert any(c.startswith("pgbouncer -u postgres -d") for c in machine.calls())
