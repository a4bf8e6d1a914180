"""A worker process is recognisable: application_name on PostgreSQL, its process title."""

import sys
from pathlib import Path

import pytest
from django.db import connection

from autotask.worker import identity
from tests.app import tasks
from tests.conftest import wait_for


def test_application_name_keeps_the_worker_id_within_63_bytes():
    assert identity.application_name("web1:4242:0a1b2c3d") == "autotask worker web1:4242:0a1b2c3d"
    long_host = "h" * 40
    name = identity.application_name(f"{long_host}:4194304:0a1b2c3d")
    assert len(name.encode()) <= 63
    assert name.startswith("autotask worker hhh") and name.endswith(":4194304:0a1b2c3d")


def test_application_name_keeps_the_sites_own_in_front():
    assert identity.application_name("web1:42:0a1b2c3d", "shop") == "shop autotask worker web1:42:0a1b2c3d"
    name = identity.application_name("web1:42:0a1b2c3d", "é" * 60)
    assert len(name.encode()) <= 63
    assert name.endswith(" autotask worker web1:42:0a1b2c3d")
    assert name.startswith("é")  # cut on a character boundary


def test_without_setproctitle_the_title_is_left_alone(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "setproctitle", None)  # import fails
    with caplog.at_level("DEBUG", logger="autotask"):
        title = identity.ProcessTitle("web1:42:0a1b2c3d", None)
        title.show("idle")
    assert title.setproctitle is None
    assert [r.levelname for r in caplog.records] == ["DEBUG"]


def _cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_process_title_names_the_worker(worker_process):
    pytest.importorskip("setproctitle")
    worker = worker_process("--queues", "default,other")
    assert wait_for(lambda: "(idle)" in _cmdline(worker.pid), message="the worker's title"), _cmdline(
        worker.pid
    )
    title = _cmdline(worker.pid)
    assert title.startswith("autotask worker ") and f":{worker.pid}:" in title
    assert "queues=default,other" in title
    handle = tasks.sleep_then_record("title", 3)
    assert wait_for(lambda: "(running 1)" in _cmdline(worker.pid), message="running in the title")
    assert handle.wait(15)


@pytest.mark.django_db(transaction=True)
def test_worker_runs_without_setproctitle(worker_process, tmp_path):
    (tmp_path / "setproctitle.py").write_text("raise ImportError('not installed')\n")
    worker = worker_process(env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[2]}"})
    handle = tasks.add(1, 2)
    assert handle.wait(15), worker.stop()
    assert handle.result == 3


def _activity(pid_part):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s",
            [f"%autotask worker %{pid_part}%"],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_application_name_in_pg_stat_activity(worker_process):
    if connection.vendor != "postgresql":
        pytest.skip("application_name is PostgreSQL's")
    worker = worker_process()
    # Its own connection and its LISTEN connection.
    assert wait_for(lambda: len(_activity(f":{worker.pid}:")) >= 2, message="two named connections")
    names = set(_activity(f":{worker.pid}:"))
    assert len(names) == 1
    (name,) = names
    assert name.startswith("autotask worker ") and len(name.encode()) <= 63
    # Task code in a pool thread: the same name.
    handle = tasks.application_name()
    assert handle.wait(15)
    assert handle.result == name


@pytest.mark.django_db(transaction=True)
def test_a_sites_own_application_name_is_kept(worker_process):
    if connection.vendor != "postgresql":
        pytest.skip("application_name is PostgreSQL's")
    worker = worker_process(env={"PGAPPNAME": "shop"})
    assert wait_for(lambda: _activity(f":{worker.pid}:"), message="a named connection")
    assert all(name.startswith("shop autotask worker ") for name in _activity(f":{worker.pid}:"))
    handle = tasks.application_name()
    assert handle.wait(15)
    assert handle.result.startswith("shop autotask worker ")


@pytest.mark.django_db(transaction=True)
def test_label_connections_keeps_the_application_name_in_options(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("application_name is PostgreSQL's")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    monkeypatch.setitem(options, "application_name", "shop")
    monkeypatch.delenv("PGAPPNAME", raising=False)
    try:
        identity.label_connections("web1:42:0a1b2c3d")
        assert options["application_name"] == "shop autotask worker web1:42:0a1b2c3d"
        with connection.cursor() as cursor:  # reopened with the name
            cursor.execute("SELECT current_setting('application_name')")
            assert cursor.fetchone()[0] == "shop autotask worker web1:42:0a1b2c3d"
    finally:
        connection.close()  # the next test's connection opens without it (monkeypatch restores OPTIONS)
