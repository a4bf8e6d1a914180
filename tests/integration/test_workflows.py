"""Progress and workflows with real worker processes (SQLite, PostgreSQL, MariaDB)."""

import pytest
from django.db import transaction

from autotask import chain, group
from autotask.models import TaskQueue, Workflow
from autotask.task import DONE, ERROR, RUNNING
from tests.app import tasks
from tests.app import workflow_tasks as wt
from tests.app.models import Record
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_progress_and_metadata_are_visible_from_another_process_while_the_task_runs(worker_process, tmp_path):
    gate = tmp_path / "gate"
    handle = wt.report_progress(str(gate), 1000)
    worker = worker_process("--concurrency", "2")

    def reported():
        progress = handle.progress
        return progress if progress and progress["done"] == 1000 else None

    progress = wait_for(reported, timeout=30, message="the last progress of the running task")
    assert handle.status == RUNNING  # seen while it runs, not only with its outcome
    assert (progress["total"], progress["message"]) == (1000, "step 1000")
    metadata = handle.metadata
    assert metadata["phase"] == "counting"
    assert metadata["pid"] == worker.pid
    gate.touch()
    assert handle.wait(30)
    assert handle.result == 1000
    # The last metadata, set just before it returned, is written before its outcome.
    assert handle.metadata["phase"] == "finished"


def test_a_chain_passes_each_result_to_the_next_step(worker_process):
    worker_process()
    handle = chain(wt.start.step(2), wt.plus.step(3), wt.plus.step(5)).enqueue()
    assert handle.wait(30)
    assert handle.status == DONE
    assert handle.result == 10
    steps = [stage[0].task for stage in handle.steps]
    assert [step.result for step in steps] == [2, 5, 10]
    assert [step.attempts for step in steps] == [1, 1, 1]


def test_a_group_callback_gets_all_results(worker_process):
    worker_process("--concurrency", "4")
    handle = group(wt.square.step(i) for i in range(20)).then(wt.total.step("callback")).enqueue()
    assert handle.wait(60)
    assert handle.status == DONE
    assert handle.result == sum(i * i for i in range(20))
    assert list(Record.objects.values_list("key", flat=True)) == ["callback"]


def test_a_failing_step_stops_its_chain(worker_process):
    worker_process()
    handle = chain(wt.start.step(1), wt.fail.step(), wt.square.step(key="never")).enqueue()
    assert handle.wait(30)
    assert handle.status == ERROR
    states = [[step.status_name for step in stage] for stage in handle.steps]
    assert states == [["done"], ["error"], ["not run"]]
    assert "step failed with (1,)" in handle.steps[1][0].task.error_message
    assert not Record.objects.exists()
    assert TaskQueue.objects.filter(workflow_id=handle.pk).count() == 2


def test_a_workflow_enqueued_in_a_rolled_back_transaction_leaves_nothing(worker_process):
    worker_process()
    with pytest.raises(RuntimeError), transaction.atomic():
        chain(wt.start.step(1), wt.plus.step(1)).enqueue()
        group(wt.square.step(i, key=f"g{i}") for i in range(10)).then(wt.total.step("cb")).enqueue()
        assert Workflow.objects.count() == 2  # stored, in this transaction
        raise RuntimeError("roll back")
    # A task enqueued after it runs: the worker was there to run anything left behind.
    assert tasks.add(1, 2).wait(30)
    assert not Workflow.objects.exists()
    assert not TaskQueue.objects.filter(function__startswith="tests.app.workflow_tasks").exists()
    assert TaskQueue.objects.filter(function="tests.app.tasks.add").count() == 1
    assert not Record.objects.exists()
