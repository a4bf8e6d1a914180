"""Two real worker processes on one database never run a task twice."""

import pytest

from autotask.models import TaskQueue, Worker
from autotask.task import DONE
from tests.app import tasks
from tests.app.models import Record
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TASKS = 1000
WORKERS = 2
CONCURRENCY = "2"  # threads per worker: claims race inside each process too


def test_two_workers_run_each_task_exactly_once(worker_process):
    workers = [worker_process("--concurrency", CONCURRENCY) for _ in range(WORKERS)]
    # Both must be polling before the work arrives, or one could take it all.
    wait_for(lambda: Worker.objects.count() == WORKERS, timeout=30, message="both workers to start")
    keys = [f"once-{i}" for i in range(TASKS)]
    handles = tasks.record.enqueue_many((key,) for key in keys)
    assert len({h.pk for h in handles}) == TASKS

    wait_for(
        lambda: TaskQueue.objects.filter(status=DONE).count() == TASKS,
        timeout=180,
        interval=0.2,
        message=f"{TASKS} tasks to finish",
    )
    # A graceful stop lets any execution still in flight finish, so a second
    # run of some task would be counted below.
    for worker in workers:
        code, out = worker.stop()
        assert code == 0, out

    executed = list(Record.objects.values_list("key", flat=True))
    assert len(executed) == TASKS, (
        "some task ran more than once" if len(executed) > TASKS else "tasks are missing"
    )
    assert set(executed) == set(keys)
    assert set(TaskQueue.objects.values_list("attempts", flat=True)) == {1}  # claimed once each
    pids = set(Record.objects.values_list("pid", flat=True))
    assert pids == {w.pid for w in workers}, "both workers must have taken part"
