"""async def tasks on the worker's event loop, with real worker processes."""

import signal
import threading
from pathlib import Path

import pytest

from autotask.models import TaskQueue
from autotask.task import CANCELLED, DONE, ERROR, RUNNING
from tests.app import aio_tasks
from tests.conftest import records, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = (DONE, ERROR, CANCELLED)


def statuses(ids):
    return dict(TaskQueue.objects.filter(pk__in=ids).values_list("pk", "status"))


def finished(ids):
    def check():
        found = statuses(ids)
        return len(found) == len(ids) and all(status in FINISHED for status in found.values())

    return check


def started(ids):
    return TaskQueue.objects.filter(pk__in=ids, status=RUNNING, started_at__isnull=False).count()


def arrived(directory):
    path = Path(directory) / "arrived"
    return path.read_text().count("\n") if path.exists() else 0


def test_many_async_tasks_run_at_once_each_with_its_own_current_task(worker_process, tmp_path):
    # Each task waits until 100 have arrived: none could finish one (or a few) at a time.
    handles = [aio_tasks.barrier(str(tmp_path), 100) for _ in range(200)]
    worker = worker_process("--concurrency", "1", "--async-concurrency", "150")
    ids = [handle.pk for handle in handles]
    wait_for(finished(ids), timeout=90, message="200 tasks finished")
    assert set(statuses(ids).values()) == {DONE}
    for handle in handles:
        assert handle.result == handle.pk  # current_task() was the task's own in its coroutine
    assert arrived(tmp_path) == 200
    code, out = worker.stop()
    assert code == 0, out


def test_sync_and_async_tasks_mixed_in_one_queue_all_run(worker_process, tmp_path):
    sync = [aio_tasks.sync_sleep(0.05) for _ in range(20)]
    barrier = [aio_tasks.barrier(str(tmp_path), 60) for _ in range(60)]
    more = [aio_tasks.async_sleep(0.05) for _ in range(100)]
    worker = worker_process("--concurrency", "2", "--async-concurrency", "80")
    ids = [handle.pk for handle in sync + barrier + more]
    wait_for(finished(ids), timeout=90, message="the mixed tasks finished")
    assert set(statuses(ids).values()) == {DONE}
    assert {handle.result for handle in sync} == {"sync"}
    assert [handle.result for handle in more] == [handle.pk for handle in more]
    code, out = worker.stop()
    assert code == 0, out


def test_one_task_stopped_and_one_timed_out_while_the_others_go_on(worker_process, tmp_path):
    stopped = aio_tasks.stopped_by_another_thread(str(tmp_path))
    timed_out = aio_tasks.sleeps_past_timeout()
    others = [aio_tasks.barrier(str(tmp_path), 21) for _ in range(20)]  # with the stopped one: 21
    worker = worker_process("--async-concurrency", "50")
    ids = [stopped.pk, timed_out.pk, *(handle.pk for handle in others)]
    wait_for(finished(ids), timeout=60, message="the tasks finished")
    assert set(statuses([handle.pk for handle in others]).values()) == {DONE}
    stopped_row = TaskQueue.objects.get(pk=stopped.pk)
    assert stopped_row.status == CANCELLED  # a stop is never retried
    assert stopped_row.history[-1]["exception"] == "autotask.exceptions.TaskStopped"
    assert "was asked to stop" in stopped_row.error_message
    timed_out_row = TaskQueue.objects.get(pk=timed_out.pk)
    assert timed_out_row.status == ERROR
    assert timed_out_row.history[-1]["exception"] == "autotask.exceptions.TaskTimeout"
    assert timed_out_row.error_message == "timed out after 0.3 seconds"
    code, out = worker.stop()
    assert code == 0, out


def test_sigkill_with_100_in_flight_all_recovered(worker_process, tmp_path):
    handles = [aio_tasks.held_until_released(str(tmp_path)) for _ in range(100)]
    ids = [handle.pk for handle in handles]
    env = {"AUTOTASK_TEST_LEASE_SECONDS": "2"}
    first = worker_process("--async-concurrency", "100", env=env)
    wait_for(lambda: started(ids) == 100 and arrived(tmp_path) == 100, timeout=60, message="100 in flight")
    first.signal(signal.SIGKILL)
    first.wait()
    second = worker_process("--async-concurrency", "100", env=env)
    wait_for(finished(ids), timeout=90, message="the killed worker's tasks recovered and run")
    assert set(statuses(ids).values()) == {DONE}
    assert {handle.result for handle in handles} == {2}  # each ran its second attempt to the end
    code, out = second.stop()
    assert code == 0, out


def test_graceful_stop_drains_the_running_coroutines(worker_process, tmp_path):
    handles = [aio_tasks.held_until_released(str(tmp_path)) for _ in range(100)]
    ids = [handle.pk for handle in handles]
    worker = worker_process("--async-concurrency", "100", env={"AUTOTASK_TEST_LOG": "INFO"})
    lines = _read_lines(worker)
    wait_for(lambda: started(ids) == 100 and arrived(tmp_path) == 100, timeout=60, message="100 in flight")
    worker.signal(signal.SIGTERM)
    wait_for(lambda: any("stopping" in line for line in lines), timeout=30, message="the stop logged")
    assert worker.proc.poll() is None  # still running: it waits for its coroutines
    assert started(ids) == 100
    (tmp_path / "release").touch()
    assert worker.proc.wait(timeout=60) == 0, "".join(lines)
    assert set(statuses(ids).values()) == {DONE}
    assert {handle.result for handle in handles} == {1}


def _read_lines(worker):
    """Collect the worker's output lines as they come, in a thread (the list it returns grows)."""
    lines = []

    def read():
        for line in worker.proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_a_blocking_call_in_an_async_task_is_reported_with_its_name(worker_process):
    blocking = aio_tasks.blocks_the_loop(1.5)
    worker = worker_process("--async-concurrency", "10")
    wait_for(finished([blocking.pk]), timeout=30, message="the blocking task finished")
    assert TaskQueue.objects.get(pk=blocking.pk).status == DONE
    code, out = worker.stop()
    assert code == 0, out
    warnings = [line for line in out.splitlines() if "blocked" in line]
    assert len(warnings) == 1, out
    assert f"tests.app.aio_tasks.blocks_the_loop #{blocking.pk}" in warnings[0]


def test_the_async_orm_and_sync_to_async_work_inside_tasks(worker_process):
    handles = [aio_tasks.uses_the_orm(f"orm-{i}-") for i in range(20)]
    worker = worker_process("--async-concurrency", "20")
    ids = [handle.pk for handle in handles]
    wait_for(finished(ids), timeout=60, message="the ORM tasks finished")
    assert set(statuses(ids).values()) == {DONE}
    assert {handle.result for handle in handles} == {1}
    assert len(records("orm-")) == 20
    code, out = worker.stop()
    assert code == 0, out


def test_connections_opened_through_sync_to_async_are_released_after_the_task(worker_process):
    used = aio_tasks.uses_the_orm("conn-")
    checked = aio_tasks.finds_the_orm_connection_open()
    worker = worker_process("--async-concurrency", "1")  # one after the other
    wait_for(finished([used.pk, checked.pk]), timeout=30, message="both tasks finished")
    assert used.result == 1
    assert checked.result is False  # CONN_MAX_AGE 0: closed after the task that opened it
    code, out = worker.stop()
    assert code == 0, out


def test_the_leases_of_running_async_tasks_are_renewed(worker_process, tmp_path):
    handles = [aio_tasks.held_until_released(str(tmp_path)) for _ in range(30)]
    ids = [handle.pk for handle in handles]
    worker = worker_process("--async-concurrency", "30", env={"AUTOTASK_TEST_LEASE_SECONDS": "1"})
    wait_for(lambda: started(ids) == 30 and arrived(tmp_path) == 30, timeout=60, message="30 in flight")
    first = dict(TaskQueue.objects.filter(pk__in=ids).values_list("pk", "lease_expires_at"))
    # Renewed every third of the lease: each one moves past where it first stood, then past that again.
    wait_for(
        lambda: all(
            lease > first[pk]
            for pk, lease in TaskQueue.objects.filter(pk__in=ids).values_list("pk", "lease_expires_at")
        ),
        timeout=30,
        message="every lease renewed",
    )
    (tmp_path / "release").touch()
    wait_for(finished(ids), timeout=60, message="the tasks finished")
    assert set(statuses(ids).values()) == {DONE}
    assert {handle.result for handle in handles} == {1}  # never recovered: the first attempt ended them
    code, out = worker.stop()
    assert code == 0, out


def test_with_async_concurrency_0_async_tasks_take_a_thread_each(worker_process, tmp_path):
    handles = [aio_tasks.barrier(str(tmp_path), 2, give_up=30) for _ in range(2)]
    worker = worker_process("--concurrency", "2", "--async-concurrency", "0")
    ids = [handle.pk for handle in handles]
    wait_for(finished(ids), timeout=60, message="the tasks finished")
    assert set(statuses(ids).values()) == {DONE}
    code, out = worker.stop()
    assert code == 0, out


def test_sync_tasks_claimed_for_the_loop_while_the_threads_are_busy_go_to_another_worker(
    worker_process, tmp_path
):
    # Worker A's one thread is held; its loop has room, so its claims bring sync tasks it cannot start.
    held = aio_tasks.sync_held_until_released(str(tmp_path))
    busy = worker_process("--concurrency", "1", "--async-concurrency", "20")
    wait_for(lambda: started([held.pk]) == 1, timeout=30, message="worker A's thread busy")
    warm = aio_tasks.async_worker_id()  # A meets an async task: its loop's slots count from now on
    wait_for(finished([warm.pk]), timeout=30, message="A's async task")
    handles = [aio_tasks.sync_worker_id() for _ in range(10)]
    ids = [handle.pk for handle in handles]
    other = worker_process("--concurrency", "2", "--async-concurrency", "0")
    wait_for(finished(ids), timeout=60, message="the sync tasks run elsewhere")
    assert set(statuses(ids).values()) == {DONE}
    assert warm.result not in {handle.result for handle in handles}  # none ran on A
    assert TaskQueue.objects.get(pk=held.pk).status == RUNNING  # A's thread was busy all along
    (tmp_path / "release").touch()
    wait_for(finished([held.pk]), timeout=30, message="the held task")
    for worker in (busy, other):
        code, out = worker.stop()
        assert code == 0, out


def test_signal_receivers_using_the_orm_run_for_async_tasks_and_sys_exit_is_a_failure(worker_process):
    ok = aio_tasks.async_sleep(0)
    exiting = aio_tasks.exits(3)
    after = aio_tasks.async_sleep(0)
    ids = [ok.pk, exiting.pk, after.pk]
    worker = worker_process(
        "--async-concurrency", "5", env={"AUTOTASK_TEST_SCHEDULES": "tests.app.aio_receivers"}
    )
    wait_for(finished(ids), timeout=30, message="the tasks finished")
    assert statuses(ids) == {ok.pk: DONE, exiting.pk: ERROR, after.pk: DONE}  # the loop went on
    assert TaskQueue.objects.get(pk=exiting.pk).error_message == "the task called sys.exit(3)"
    # The receivers ran (with the ORM) for each task, before its outcome was written.
    assert sorted(records("started-")) == sorted(f"started-{pk}" for pk in ids)
    assert sorted(records("finished-")) == sorted(
        [f"finished-{ok.pk}-{DONE}", f"finished-{exiting.pk}-{ERROR}", f"finished-{after.pk}-{DONE}"]
    )
    code, out = worker.stop()
    assert code == 0, out
