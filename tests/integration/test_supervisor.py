"""The worker beside each Django process: which processes get one, restarts, exits, servers."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings

from autotask import supervisor
from autotask.checks import check_worker_executable
from autotask.definitions.options import TaskOptions
from autotask.enqueue import enqueue
from autotask.tasks import DelayedTask
from autotask.worker.parent import ParentLink
from tests.app import tasks
from tests.conftest import ROOT, records, wait_for
from tests.recovery.conftest import (
    START_TIMEOUT,
    alive,
    base_env,
    children,
    spawn_fixture,  # noqa: F401 - the "spawn" fixture
    started_beside,
    supervised_worker,
    wait_all_done,
    wait_running,
    worker_children,
)

STARTING = "starting an autotask worker beside process"
# Process mechanics that do not depend on the database run in the SQLite environments only,
# which keeps the matrix within its time budget.
process_mechanics = pytest.mark.skipif(
    os.environ.get("AUTOTASK_TEST_DB", "sqlite") != "sqlite",
    reason="process mechanics, the same on every database: tested with SQLite",
)


# -- which processes get a worker -----------------------------------------------------


@pytest.fixture
def outside_pytest(monkeypatch):
    """Let supervisor.serves() judge as in a production process."""
    monkeypatch.delitem(sys.modules, "pytest")
    monkeypatch.delenv("RUN_MAIN", raising=False)
    monkeypatch.delenv(supervisor.ENV_FD, raising=False)

    def running(command):
        argv = ["manage.py", *command.split()] if command else None
        monkeypatch.setattr(supervisor, "management_command", lambda: argv and (argv[1], argv))

    return running


@pytest.mark.parametrize(
    "command, serves",
    [
        (None, True),  # a WSGI/ASGI server worker or a script calling django.setup()
        ("migrate", False),
        ("makemigrations", False),
        ("shell", False),
        ("test", False),
        ("check --deploy", False),
        ("collectstatic --noinput", False),
        ("run_autotask", False),
        ("dbshell", False),
        ("createsuperuser", False),
        ("runserver --noreload", True),
        ("runserver", False),  # the autoreloader's outer process only restarts the server
        ("my_long_running_command", True),
    ],
)
def test_which_processes_get_a_worker(outside_pytest, command, serves):
    outside_pytest(command)
    assert supervisor.serves() is serves


def test_autoreloaded_runserver_child_gets_a_worker(outside_pytest, monkeypatch):
    outside_pytest("runserver 8000")
    monkeypatch.setenv("RUN_MAIN", "true")
    assert supervisor.serves() is True


@override_settings(AUTOTASK_NON_SERVING_COMMANDS=["my_long_running_command"])
def test_setting_extends_the_non_serving_commands(outside_pytest):
    outside_pytest("my_long_running_command --all")
    assert supervisor.serves() is False


@pytest.mark.parametrize("overrides", [{"AUTOTASK_IS_ACTIVE": False}, {"AUTOTASK_WORKER_AUTOSTART": False}])
def test_no_worker_when_inactive_or_autostart_off(outside_pytest, overrides):
    outside_pytest(None)
    with override_settings(**overrides):
        assert supervisor.serves() is False


def test_no_worker_inside_a_supervised_worker_or_a_test_run(outside_pytest, monkeypatch):
    outside_pytest(None)
    monkeypatch.setenv(supervisor.ENV_FD, "7")
    assert supervisor.serves() is False
    monkeypatch.delenv(supervisor.ENV_FD)
    monkeypatch.setitem(sys.modules, "pytest", pytest)
    assert supervisor.serves() is False


@process_mechanics
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "args",
    [("check",), ("run_autotask", "--drain")],
    ids=["check", "run_autotask"],
)
def test_management_commands_that_do_not_serve_start_no_worker(args):
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=base_env({"AUTOTASK_TEST_LOG": "INFO"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert STARTING not in result.stdout + result.stderr


# -- a script calling django.setup() ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_script_gets_a_worker_woken_by_its_own_enqueues(spawn):
    # A long idle time: the worker sleeps until its Django process wakes it.
    django = spawn.django(env={"AUTOTASK_TEST_LOG": "DEBUG", "AUTOTASK_TEST_IDLE_TIME": "60"})
    worker = supervised_worker(django.pid)
    django.wait_output(r"worker \S+ started")
    django.send("record woken")
    wait_for(lambda: records("woken"), timeout=30, message="the task to run")
    # The wake-up is logged when the worker reads it: with LISTEN on, the
    # notification may have woken it first, and the line follows the task.
    django.wait_output("woken by the Django process that enqueued tasks")
    from tests.app.models import Record

    assert Record.objects.get(key="woken").pid == worker  # its own worker ran it


@process_mechanics
@pytest.mark.django_db(transaction=True)
def test_normal_exit_stops_the_worker_after_its_running_task(spawn):
    django = spawn.django()
    worker = supervised_worker(django.pid)
    running = tasks.sleep_then_record("graceful", 0.5)
    wait_running([running])
    django.send("exit")
    assert django.wait(30) == 0
    wait_all_done([running], timeout=30)  # the task finished although its parent has gone
    assert records("graceful") == ["graceful"]
    wait_for(lambda: not alive(worker), timeout=30, message="the worker to exit")
    assert not started_beside(django.pid)


@process_mechanics
@pytest.mark.django_db(transaction=True)
def test_worker_that_keeps_dying_is_restarted_with_back_off(spawn, tmp_path):
    dies = tmp_path / "dies"
    dies.write_text("#!/bin/sh\nexit 1\n")
    dies.chmod(0o755)
    django = spawn.django(env={"AUTOTASK_TEST_WORKER_EXECUTABLE": str(dies)})
    # Checked every 0.2 s; each quick death doubles the pause before the next start.
    django.wait_output(r"(?s)(restarting it in.*){4}", timeout=60)
    delays = [line.rsplit(" ", 1)[1] for line in django.output().splitlines() if "restarting it in" in line]
    assert delays[:4] == ["0.2s", "0.4s", "0.8s", "1.6s"]
    assert "exited with code 1" in django.output()


@process_mechanics
@pytest.mark.django_db(transaction=True)
def test_missing_executable_is_one_loud_error_not_a_restart_loop(spawn):
    django = spawn.django(env={"AUTOTASK_TEST_WORKER_EXECUTABLE": "/nonexistent/python"})
    django.wait_output(r"ready \d+ without a worker")  # django.setup() has returned
    out = django.output()
    assert out.count("no autotask worker runs beside process") == 1
    assert "'/nonexistent/python'" in out and "does not exist or is not executable" in out
    assert worker_children(django.pid) == []


def test_worker_that_cannot_be_restarted_is_retried_later_loudly(caplog, tmp_path):
    exits = tmp_path / "exits"
    exits.write_text("#!/bin/sh\nexit 0\n")
    exits.chmod(0o755)
    with override_settings(AUTOTASK_WORKER_MONITOR_INTERVALL=0.05):
        monitor = supervisor.Supervisor([str(exits)], dict(os.environ), str(tmp_path)).start()
        wait_for(lambda: "exited with code 0" in caplog.text, message="the first exit")
        exits.unlink()  # a deploy replacing the interpreter, say
        wait_for(lambda: "cannot restart the autotask worker" in caplog.text, message="the failed restart")
        monitor.stop()
    monitor.thread.join(5)
    assert not monitor.thread.is_alive()
    assert "retrying in 60s" in caplog.text


# -- the executable and its system check ------------------------------------------------


def test_executable_defaults_to_the_running_interpreter():
    assert supervisor.worker_executable() == sys.executable
    assert check_worker_executable() == []


@pytest.mark.parametrize("value", ["/nonexistent/python", "no-such-python-anywhere", "README.rst"])
def test_unusable_executable_is_a_system_check_error(value):
    with override_settings(AUTOTASK_WORKER_EXECUTABLE=value, BASE_DIR=ROOT):
        errors = check_worker_executable()
        with pytest.raises(ImproperlyConfigured, match="does not exist or is not executable"):
            supervisor.worker_executable()
    assert [e.id for e in errors] == ["autotask.E020"]
    assert "AUTOTASK_WORKER_EXECUTABLE" in errors[0].hint


def test_relative_executable_is_relative_to_base_dir(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    with override_settings(AUTOTASK_WORKER_EXECUTABLE="bin/python", BASE_DIR=tmp_path):
        assert supervisor.worker_executable() == str(tmp_path / "bin" / "python")
        assert check_worker_executable() == []


def test_bare_executable_name_is_looked_up_on_path(monkeypatch, tmp_path):
    (tmp_path / "mypython").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with override_settings(AUTOTASK_WORKER_EXECUTABLE="mypython"):
        assert supervisor.worker_executable() == str(tmp_path / "mypython")


def test_settings_configured_in_code_cannot_start_a_worker(monkeypatch):
    from django.conf import settings

    monkeypatch.setattr(settings._wrapped, "SETTINGS_MODULE", None)
    with pytest.raises(ImproperlyConfigured, match=r"settings\.configure"):
        supervisor.worker_command()


# -- the parent's end of the link --------------------------------------------------------


@pytest.fixture
def linked_supervisor(monkeypatch):
    """This process's supervisor, linked to a socket the test reads instead of a child."""
    fake = supervisor.Supervisor(["true"], {}, str(ROOT))
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    fake.link = ours
    monkeypatch.setattr(supervisor, "_current", fake)
    monkeypatch.setattr("autotask.enqueue.local_wakeups", [supervisor.wake])
    yield fake, theirs
    fake.stop()
    theirs.close()


def pending_wakeups(sock):
    try:
        return len(sock.recv(4096))
    except BlockingIOError:
        return 0


@pytest.mark.django_db(transaction=True)
def test_enqueue_wakes_the_local_worker_after_commit_only(linked_supervisor):
    _, child_end = linked_supervisor
    with transaction.atomic():
        tasks.add(1, 2)
        assert pending_wakeups(child_end) == 0  # not before the commit
    assert pending_wakeups(child_end) == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add(1, 2)
        raise RuntimeError("roll back")
    tasks.add.using(delay=60)(1, 2)  # nothing due now: nothing to wake for
    assert pending_wakeups(child_end) == 0


@pytest.mark.django_db(transaction=True)
def test_stop_closes_the_link_so_the_worker_sees_end_of_file(linked_supervisor):
    fake, child_end = linked_supervisor
    link = ParentLink(child_end, os.getpid())
    assert link.receive() is True  # open, nothing pending
    fake.stop()
    assert link.receive() is False


def test_forked_copy_lets_go_of_the_parents_worker(monkeypatch):
    class Recorder:
        pid = -1  # another process's supervisor
        forgotten = False

        def forget(self):
            self.forgotten = True

    inherited = Recorder()
    started = []
    monkeypatch.setattr(supervisor, "_current", inherited)
    monkeypatch.setattr(supervisor, "_master_pid", None)
    monkeypatch.setattr(supervisor, "start", lambda: started.append(os.getpid()))
    supervisor._after_fork()
    assert inherited.forgotten and supervisor._current is None and started == []
    # A child of a pre-fork master (a gunicorn worker forked after --preload) starts its own.
    monkeypatch.setattr(supervisor, "_master_pid", os.getppid())
    supervisor._after_fork()
    assert started == [os.getpid()]


def test_parent_death_signal_is_armed_on_linux():
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    code = textwrap.dedent(
        """
        import ctypes, signal
        from autotask.worker.parent import PARENT_DEATH_SIGNAL, _set_parent_death_signal
        assert _set_parent_death_signal(PARENT_DEATH_SIGNAL)
        value = ctypes.c_int()
        ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        print(value.value == PARENT_DEATH_SIGNAL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "True", result.stderr


# -- servers ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return json.loads(response.read())


def answers(port, path="/whoami/"):
    try:
        return get(port, path)
    except OSError:
        return None


SERVER_ENV = {"DJANGO_SETTINGS_MODULE": "tests.recovery.settings"}


@process_mechanics
@pytest.mark.django_db(transaction=True)
def test_runserver_worker_runs_the_current_code_after_a_reload(spawn, tmp_path):
    module = tmp_path / "reloadable.py"
    module.write_text("def version():\n    return 'v1'\n")
    # The settings import ``reloadable`` (so the reloader watches it); the task that
    # reports its version is declared in a module of its own.
    (tmp_path / "reloadable_task.py").write_text(
        "from autotask.tasks import delayed_task\n\nimport reloadable\n\n\n"
        "@delayed_task\ndef version():\n    return reloadable.version()\n"
    )
    port = free_port()
    env = {
        **SERVER_ENV,
        "AUTOTASK_TEST_RELOAD_MODULE": "reloadable",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
    }
    server = spawn([sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}"], env, "runserver")
    served = wait_for(lambda: answers(port), timeout=START_TIMEOUT, message="runserver to answer")
    # The autoreloader's outer process has no worker; the serving child has one.
    assert served["pid"] in children(server.pid)
    first = supervised_worker(served["pid"])
    assert worker_children(server.pid) == []
    assert run_version() == "v1"

    module.write_text("def version():\n    return 'v2'\n")
    stat = module.stat()
    os.utime(module, (stat.st_atime, stat.st_mtime + 2))  # a visibly newer file for the reloader
    reloaded = wait_for(
        lambda: (answer := answers(port)) and answer["pid"] != served["pid"] and answer,
        timeout=START_TIMEOUT,
        message="runserver to reload",
    )
    second = supervised_worker(reloaded["pid"])
    wait_for(lambda: not alive(first), timeout=30, message="the old worker to exit")
    assert second != first
    assert run_version() == "v2"


def run_version():
    handle = DelayedTask(enqueue("reloadable_task.version", (), {}, TaskOptions()))
    assert handle.wait(START_TIMEOUT)
    return handle.result


@process_mechanics
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-load", "preload"])
def test_gunicorn_runs_one_worker_per_server_worker(spawn, preload):
    pytest.importorskip("gunicorn")
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    argv += ["--preload"] if preload else []
    server = spawn([*argv, "tests.recovery.wsgi:application"], SERVER_ENV, "gunicorn")

    def server_workers():
        return [pid for pid in children(server.pid) if pid not in worker_children(server.pid)]

    wait_for(lambda: len(server_workers()) == 2, timeout=START_TIMEOUT, message="two gunicorn workers")
    pairs = {pid: supervised_worker(pid) for pid in server_workers()}
    assert worker_children(server.pid) == []  # none for the master, with or without --preload

    # Requests enqueue tasks; the workers beside the server workers run them.
    answered = [get(port, f"/record/req{i}/") for i in range(4)]
    assert {answer["pid"] for answer in answered} <= set(pairs)
    wait_for(lambda: len(records("req")) == 4, timeout=30, message="the requests' tasks to run")

    if preload:
        # A server worker killed outright takes its worker with it; the replacement that
        # gunicorn forks from the master (no ready() there) still gets a worker of its own.
        victim, victims_worker = next(iter(pairs.items()))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not alive(victims_worker), timeout=30, message="the orphaned worker to exit")
        wait_for(
            lambda: len([p for p in server_workers() if p != victim]) == 2,
            timeout=START_TIMEOUT,
            message="gunicorn to replace its worker",
        )
        replacement = next(p for p in server_workers() if p not in pairs)
        supervised_worker(replacement)

    # Stopping gunicorn stops every worker any of its processes ever started.
    members = [server.pid, *children(server.pid), *pairs]
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    wait_for(
        lambda: not any(started_beside(pid) for pid in members), timeout=30, message="every worker to exit"
    )
