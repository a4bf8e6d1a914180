"""Stopping running tasks: real worker processes, the request from this (another) process."""

import pytest

from autotask.models import TaskQueue
from autotask.task import CANCELLED, DONE, RUNNING
from autotask.tasks import DelayedTask
from tests.app import stopping, tasks
from tests.conftest import records, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def started(path):
    return lambda: path.exists()


def stop_and_wait(handle):
    assert handle.stop() is True
    assert TaskQueue.objects.get(pk=handle.pk).stop_requested_at is not None
    assert handle.wait(15), "the stopped task never finished"
    return TaskQueue.objects.get(pk=handle.pk)


def test_a_sync_task_that_checks_should_stop_ends_cancelled(worker_process, tmp_path):
    worker_process()
    marker = tmp_path / "started"
    handle = stopping.cooperative(str(marker))
    wait_for(started(marker), message="the task to start")
    assert handle.status == RUNNING
    row = stop_and_wait(handle)
    assert row.status == CANCELLED
    assert row.attempts == 1  # cancelled, never retried (it has retries left)
    assert "stopped on request" in row.error_message and "TaskStopped" in row.traceback
    assert handle.stop() is False  # finished: nothing to stop


def test_an_async_task_is_cancelled(worker_process, tmp_path):
    worker_process()
    marker = tmp_path / "started"
    handle = stopping.sleeps_async(str(marker))
    wait_for(started(marker), message="the task to start")
    row = stop_and_wait(handle)
    assert row.status == CANCELLED and row.attempts == 1
    assert "CancelledError" in row.traceback


def test_an_isolated_task_is_interrupted_in_its_child(worker_process, tmp_path):
    worker_process("--concurrency", "2")
    marker = tmp_path / "started"
    handle = stopping.sleeps_isolated(str(marker))
    wait_for(started(marker), message="the task to start")
    row = stop_and_wait(handle)
    assert row.status == CANCELLED and row.attempts == 1
    assert "TaskStopped" in row.traceback
    # The child survived its interrupted task and runs the next one.
    again = stopping.child_pid()
    assert again.wait(15) and again.status == DONE
    assert again.result == int(marker.read_text())


def test_a_task_in_process_mode_is_stopped(worker_process, tmp_path):
    worker_process("--processes", "1")
    marker = tmp_path / "started"
    handle = tasks.sleep_then_record.using(timeout=None)("k", 60)  # a plain sync task
    assert handle.status is not None
    slow = stopping.sleeps_isolated(str(marker))
    wait_for(lambda: handle.status == RUNNING, message="the plain task to run")
    row = stop_and_wait(handle)
    assert row.status == CANCELLED
    wait_for(started(marker), message="the next task to start in the child")
    assert stop_and_wait(slow).status == CANCELLED


def test_stopping_a_waiting_task_cancels_it(db):
    handle = tasks.add(1, 2)
    assert handle.stop() is True
    assert handle.status == CANCELLED
    assert TaskQueue.objects.get(pk=handle.pk).stop_requested_at is None


def test_stopping_a_missing_task_is_false(db):
    assert DelayedTask(10**9).stop() is False


def test_cancel_keeps_its_meaning_for_running_tasks(worker_process, tmp_path):
    worker_process()
    marker = tmp_path / "started"
    handle = stopping.cooperative(str(marker))
    wait_for(started(marker), message="the task to start")
    assert handle.cancel() is False  # cancel() is for waiting tasks; stop() stops running ones
    assert handle.status == RUNNING
    assert stop_and_wait(handle).status == CANCELLED


def test_the_task_finished_signal_reports_cancelled(worker_process, tmp_path):
    worker_process()
    marker = tmp_path / "started"
    handle = stopping.cooperative(str(marker))
    wait_for(started(marker), message="the task to start")
    stop_and_wait(handle)
    assert records("stopping-finished:") == [f"stopping-finished:{handle.pk}:{CANCELLED}"]


def test_a_framework_task_is_stopped_and_its_result_says_so(worker_process, tmp_path):
    if not hasattr(stopping, "framework_sleeps"):
        pytest.skip("no tasks framework installed")
    worker_process()
    marker = tmp_path / "started"
    result = stopping.framework_sleeps.enqueue(str(marker))
    wait_for(started(marker), message="the task to start")
    handle = DelayedTask(int(result.id))
    assert stop_and_wait(handle).status == CANCELLED
    result.refresh()
    assert result.status == "FAILED" and result.is_finished
    assert result.errors[-1].exception_class_path == "autotask.exceptions.TaskStopped"
    assert records("framework-finished:") == [f"framework-finished:{result.id}:FAILED"]


def test_an_async_task_in_process_mode_is_cancelled_in_its_child(worker_process, tmp_path):
    worker = worker_process("--processes", "1")
    marker = tmp_path / "started"
    handle = stopping.sleeps_async(str(marker))
    wait_for(started(marker), message="the task to start")
    assert int(marker.read_text()) != worker.pid  # in the child
    row = stop_and_wait(handle)
    assert row.status == CANCELLED and "CancelledError" in row.traceback
    again = stopping.child_pid()
    assert again.wait(15) and again.result == int(marker.read_text())  # the same child, alive


def test_a_framework_task_takes_the_limits_and_isolation(db):
    if not hasattr(stopping, "framework_sleeps"):
        pytest.skip("no tasks framework installed")
    result = stopping.framework_sleeps.using(soft_timeout=1, timeout=5, isolated=True).enqueue("/dev/null")
    options = TaskQueue.objects.get(pk=int(result.id)).options
    assert (options["soft_timeout"], options["timeout"], options["isolated"]) == (1, 5, True)
