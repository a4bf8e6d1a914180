"""A group's callback runs exactly once while one of two workers is SIGKILLed mid-group."""

import signal

import pytest

from autotask import group
from autotask.models import TaskQueue, Workflow
from autotask.task import DONE, RUNNING
from tests.app import workflow_tasks as wt
from tests.app.models import Record
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STEPS = 200
LEASE = {"AUTOTASK_TEST_LEASE_SECONDS": "2"}


def test_group_callback_exactly_once_with_a_worker_killed_mid_group(worker_process):
    workers = [worker_process("--concurrency", "2", env=LEASE) for _ in range(2)]
    step = wt.slow_square.using(retries=3, retry_delay=0.01)
    steps = group(step.step(i, f"step-{i}", 0.02) for i in range(STEPS))
    handle = steps.then(wt.total.step("callback")).enqueue()

    def both_ran_some():
        pids = set(Record.objects.values_list("pid", flat=True))
        return {w.pid for w in workers} <= pids and Record.objects.count() >= STEPS // 4

    wait_for(both_ran_some, timeout=60, interval=0.01, message="both workers running steps")
    workers[0].signal(signal.SIGKILL)
    workers[0].wait()
    # Its steps in flight (running, or claimed ahead) wait for recovery: the kill cut into the group.
    held = TaskQueue.objects.filter(
        workflow_id=handle.pk, status=RUNNING, worker_id__contains=f":{workers[0].pid}:"
    )
    assert held.exists()
    assert not Record.objects.filter(key="callback").exists(), "killed too late: the group had ended"

    assert handle.wait(90)
    assert handle.status == DONE, handle.error_message
    assert handle.result == sum(i * i for i in range(STEPS))
    assert Record.objects.filter(key="callback").count() == 1
    steps = TaskQueue.objects.filter(workflow_id=handle.pk).exclude(function="tests.app.workflow_tasks.total")
    assert steps.count() == STEPS
    assert set(steps.values_list("status", flat=True)) == {DONE}
    # Every step ran (a step cut off by the kill ran again: recovered and retried).
    assert set(Record.objects.exclude(key="callback").values_list("key", flat=True)) == {
        f"step-{i}" for i in range(STEPS)
    }
    assert Workflow.objects.get().remaining == 0
    code, out = workers[1].stop()
    assert code == 0, out
