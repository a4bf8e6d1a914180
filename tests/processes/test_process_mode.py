"""Process mode with real worker processes: limits, crashes, recycling, a worker killed with busy children."""

import os
import signal

import pytest

from autotask.models import TaskQueue
from autotask.task import DONE, ERROR, RUNNING
from tests.app import stopping
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def alive(pid):
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def finished(handle, timeout=20):
    assert handle.wait(timeout), f"task #{handle.pk} did not finish"
    return TaskQueue.objects.get(pk=handle.pk)


def pid_of_a_child():
    handle = stopping.child_pid()
    row = finished(handle)
    assert row.status == DONE, row.error_message
    return handle.result


def test_tasks_run_in_child_processes(worker_process):
    worker = worker_process("--processes", "2")
    handles = [stopping.add(i, i) for i in range(20)]
    assert [finished(h).status for h in handles] == [DONE] * 20
    assert [h.result for h in handles] == [2 * i for i in range(20)]
    child = pid_of_a_child()
    assert child != worker.pid and parent_of(child) != worker.pid  # forked by the fork server
    plain = stopping.plain_pid()  # not isolated: in process mode, in a child all the same
    assert finished(plain).status == DONE and plain.result != worker.pid


def test_an_isolated_task_runs_in_a_child_in_thread_mode(worker_process):
    worker = worker_process()
    plain = stopping.plain_pid()
    assert finished(plain).status == DONE and plain.result == worker.pid
    assert pid_of_a_child() != worker.pid


def test_the_hard_limit_kills_and_replaces_the_child(worker_process, tmp_path):
    worker_process("--processes", "1")
    marker = tmp_path / "started"
    handle = stopping.over_hard_limit(str(marker))
    row = finished(handle)
    assert row.status == ERROR and row.attempts == 1
    assert "timeout=1s" in row.error_message and "was killed" in row.error_message
    assert "TimeLimitExceeded" in row.traceback
    killed = int(marker.read_text())
    wait_for(lambda: not alive(killed), message="the killed child to be gone")
    replacement = pid_of_a_child()
    assert replacement != killed


def test_the_hard_limit_retries_when_attempts_are_left(worker_process, tmp_path):
    worker_process("--processes", "1")
    marker = tmp_path / "started"
    handle = stopping.over_hard_limit_retried(str(marker))
    row = finished(handle, timeout=30)
    assert row.status == ERROR and row.attempts == 2
    assert [entry["exception"] for entry in row.history] == ["autotask.exceptions.TimeLimitExceeded"] * 2


def test_a_sync_task_with_a_timeout_in_thread_mode_is_killed_in_a_child(worker_process):
    """Not isolated, no process mode (check E070 says so): the limit holds all the same."""
    worker = worker_process()
    quick = stopping.sleeps_plain.using(timeout=1)(0)  # the child's start does not count
    row = finished(quick)
    assert row.status == DONE, row.error_message
    assert quick.result != worker.pid  # in a child
    row = finished(stopping.sleeps_plain.using(timeout=1)(30))
    assert row.status == ERROR and "timeout=1s" in row.error_message


def test_the_soft_limit_raises_inside_the_task(worker_process, tmp_path):
    worker_process("--processes", "1")
    cleaned = tmp_path / "cleaned"
    row = finished(stopping.over_soft_limit(str(cleaned)))
    assert row.status == ERROR
    assert "soft_timeout=0.5" in row.error_message and "SoftTimeLimitExceeded" in row.traceback
    assert cleaned.read_text() == "cleaned up"  # the task's own except clause ran
    assert pid_of_a_child()  # the child lives on


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("exit", "exited with code 7"),
        ("kill", "killed by SIGKILL"),
        ("segfault", "killed by SIGSEGV (a segmentation fault"),
    ],
)
def test_a_child_that_dies_fails_only_its_own_task(worker_process, how, said):
    worker = worker_process("--processes", "2")
    first = pid_of_a_child()
    others = [stopping.add(i, 1) for i in range(10)]
    row = finished(stopping.dies(how))
    assert row.status == ERROR and row.attempts == 1
    assert said in row.error_message and "ChildProcessDied" in row.traceback
    assert [finished(h).status for h in others] == [DONE] * 10
    assert [finished(stopping.add(i, 1)).status for i in range(5)] == [DONE] * 5  # replaced
    assert worker.proc.poll() is None and first


def test_a_child_that_dies_is_retried_when_attempts_are_left(worker_process, tmp_path):
    worker_process("--processes", "1")
    handle = stopping.dies_once(str(tmp_path / "died"))
    row = finished(handle)
    assert row.status == DONE and row.attempts == 2 and handle.result == "survived"
    assert "exited with code 3" in row.history[0]["error"]


def test_children_are_recycled_after_a_task_count(worker_process):
    worker_process("--processes", "1", env={"AUTOTASK_TEST_CHILD_MAX_TASKS": "3"})
    pids = [pid_of_a_child() for _ in range(7)]
    assert len(set(pids[:3])) == 1 and len(set(pids[3:6])) == 1 and pids[6] != pids[5]
    assert len({pids[0], pids[3], pids[6]}) == 3
    wait_for(lambda: not alive(pids[0]), message="the first child to exit")


def test_children_are_recycled_past_a_memory_limit(worker_process):
    worker_process("--processes", "1", env={"AUTOTASK_TEST_CHILD_MAX_MEMORY": "150"})
    small = stopping.hoard(10)
    assert finished(small).status == DONE
    assert pid_of_a_child() == small.result  # well under the limit: kept
    big = stopping.hoard(200)
    assert finished(big).status == DONE
    assert pid_of_a_child() != big.result  # over the limit after that task: replaced
    wait_for(lambda: not alive(big.result), message="the recycled child to exit")


def test_a_killed_worker_leaves_no_child_and_loses_no_task(worker_process, tmp_path):
    env = {"AUTOTASK_TEST_LEASE_SECONDS": "2"}
    worker = worker_process("--processes", "2", env=env)
    markers = [tmp_path / "a", tmp_path / "b"]
    handles = [stopping.sleeps_first_time(str(marker)) for marker in markers]
    wait_for(lambda: all(m.exists() for m in markers), message="both tasks to start in children")
    children = [int(m.read_text()) for m in markers]
    fork_server = parent_of(children[0])
    assert all(alive(pid) for pid in [*children, fork_server])
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not any(alive(pid) for pid in [*children, fork_server]), message="no orphan left")
    assert all(h.status == RUNNING for h in handles)
    worker_process("--processes", "1", env=env)  # recovers the lapsed leases, runs them again
    rows = [finished(h, timeout=30) for h in handles]
    assert [row.status for row in rows] == [DONE, DONE]
    assert [h.result for h in handles] == ["second run", "second run"]


def test_process_mode_needs_a_positive_count(worker_process):
    code, output = worker_process("--processes", "0").wait()
    assert code != 0 and "--processes" in output


def test_children_go_with_a_graceful_stop(worker_process):
    worker = worker_process("--processes", "2")
    child = pid_of_a_child()
    worker.stop()
    assert worker.proc.returncode == 0
    wait_for(lambda: not alive(child), message="the children to exit")
    assert not os.path.exists(f"/proc/{child}") or not alive(child)


def test_concurrency_and_processes_must_agree(worker_process):
    code, output = worker_process("--processes", "2", "--concurrency", "3").wait()
    assert code != 0 and "--concurrency and --processes disagree" in output


def test_isolated_tasks_on_four_threads_get_at_most_four_children(worker_process):
    worker = worker_process("--concurrency", "4")
    handles = [stopping.sleeps_plain.using(isolated=True)(0.2) for _ in range(12)]
    assert [finished(h).status for h in handles] == [DONE] * 12
    pids = {h.result for h in handles}
    assert worker.pid not in pids and 1 < len(pids) <= 4


def test_a_sigterm_to_the_whole_group_lets_the_children_finish(worker_process, tmp_path):
    """A service manager signals every process of the worker: the worker decides (a graceful stop)."""
    worker = worker_process("--processes", "1")
    marker = tmp_path / "started"
    handle = stopping.sleeps_isolated(str(marker), 2)
    wait_for(marker.exists, message="the task to start")
    child = int(marker.read_text())
    for pid in (parent_of(child), child, worker.pid):  # the fork server, the child, the worker
        os.kill(pid, signal.SIGTERM)
    code, output = worker.wait()
    assert code == 0, output
    row = finished(handle)
    assert row.status == DONE and handle.result == "slept"
    wait_for(lambda: not alive(child), message="the child to exit with its worker")
