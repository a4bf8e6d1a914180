"""Workflows run by autotask.testing.run_due: the stages, results and failures, in one process."""

from datetime import timedelta

import pytest
from django.utils import timezone

from autotask import chain, group, testing
from autotask.db import get_ops
from autotask.models import TaskQueue, Workflow
from autotask.task import CANCELLED, DONE, ERROR
from tests.app import workflow_tasks as wt

pytestmark = pytest.mark.django_db(transaction=True)


def test_chain_passes_each_result_on():
    handle = chain(wt.start.step(1), wt.plus.step(2), wt.plus.step(3)).enqueue()
    assert handle.status_name == "running"
    states = [[s.status_name for s in stage] for stage in handle.steps]
    assert states == [["waiting"], ["pending"], ["pending"]]
    testing.run_due()
    assert handle.status == DONE
    assert handle.result == 6
    assert [[s.status_name for s in stage] for stage in handle.steps] == [["done"], ["done"], ["done"]]


def test_group_then_callback_gets_the_results_in_order():
    handle = group(wt.square.step(i) for i in range(5)).then(wt.total.step("cb")).enqueue()
    testing.run_due()
    assert handle.status_name == "done"
    assert handle.result == sum(i * i for i in range(5))
    callback = handle.steps[1][0].task
    assert callback.result == 30


def test_a_failing_step_stops_the_chain():
    handle = chain(wt.start.step(1), wt.fail.step(), wt.plus.step(1)).enqueue()
    testing.run_due()
    assert handle.status == ERROR
    assert "1 of 1 step of stage 2 failed" in handle.error_message
    states = [[s.status_name for s in stage] for stage in handle.steps]
    assert states == [["done"], ["error"], ["not run"]]
    assert TaskQueue.objects.filter(workflow_id=handle.pk).count() == 2


def test_a_failing_group_member_cancels_the_callback():
    handle = group(wt.square.step(1), wt.fail.step(), wt.square.step(3)).then(wt.total.step("cb")).enqueue()
    testing.run_due()
    assert handle.status == ERROR
    assert "1 of 3 steps of stage 1 failed" in handle.error_message
    assert not TaskQueue.objects.filter(function="tests.app.workflow_tasks.total").exists()


def test_pruning_keeps_the_results_of_a_running_workflow():
    later = wt.square.using(delay=3600)
    handle = group(wt.square.step(1), later.step(2)).then(wt.total.step("cb")).enqueue()
    testing.run_due()
    first = TaskQueue.objects.get(status=DONE, workflow_id=handle.pk)
    assert first.expires_at is not None
    plain = wt.start(1)
    testing.run_due()
    ops = get_ops()
    # Past every ttl: the plain task goes, the running workflow's step stays for its callback.
    ops.prune(timezone.now() + timedelta(days=30), 100)
    assert plain.status is None
    assert TaskQueue.objects.filter(pk=first.pk).exists()
    testing.run_due(now=timezone.now() + timedelta(hours=2))
    assert handle.result == 5
    ops.prune(timezone.now() + timedelta(days=30), 100)
    assert not TaskQueue.objects.filter(workflow_id=handle.pk).exists()  # the workflow ended: its steps go


def test_cancelling_a_step_cancels_its_workflow():
    handle = group(wt.square.step(1), wt.square.step(2)).then(wt.total.step("cb")).enqueue()
    first = handle.steps[0][0].task
    assert first.cancel()
    assert handle.status == CANCELLED
    assert set(TaskQueue.objects.filter(workflow_id=handle.pk).values_list("status", flat=True)) == {
        CANCELLED
    }
    assert not [r for r in testing.run_due() if r.name.startswith("tests.app.workflow_tasks")]


def test_handle_cancel():
    handle = chain(wt.start.step(1), wt.plus.step(1)).enqueue()
    assert handle.cancel()
    assert not handle.cancel()
    assert handle.status_name == "cancelled"
    assert handle.ready


def test_bad_input_stores_nothing():
    with pytest.raises(TypeError):
        chain(wt.start.step(1), wt.plus)  # a task, not a step
    with pytest.raises(ValueError):
        group([])
    with pytest.raises(TypeError):
        chain(wt.start.step(object())).enqueue()  # not serialisable: fails in the caller
    assert not Workflow.objects.exists()
    assert not TaskQueue.objects.filter(function__startswith="tests.app.workflow_tasks").exists()


def test_ended_workflows_are_pruned_after_their_ttl():
    from autotask.maintenance.pruning import prune

    fast = wt.start.using(ttl=1)
    handle = chain(fast.step(1), wt.plus.using(ttl=1).step(2)).enqueue()
    running = chain(wt.start.using(delay=3600).step(1)).enqueue()
    testing.run_due()
    assert handle.status == DONE
    prune(get_ops(), timezone.now() + timedelta(seconds=5))
    assert handle.status is None  # the row is gone
    assert running.status_name == "running"
