"""Failed tasks are kept for AUTOTASK_FAILED_TTL (or their failed_ttl), done ones for their ttl."""

from datetime import timedelta

import pytest
from django.utils import timezone

from autotask.db import get_ops
from autotask.maintenance import pruning as maintenance
from autotask.models import TaskQueue
from autotask.task import DONE, ERROR, RUNNING
from tests.app import tasks
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WEEK = timedelta(days=7)


def finished(handle, status):
    wait_for(lambda: handle.status == status, timeout=30, message=f"task #{handle.pk} to finish")
    return TaskQueue.objects.get(pk=handle.pk)


def test_failures_outlive_the_result_ttl_and_done_tasks_do_not(worker_process):
    worker_process()
    failed = finished(tasks.boom(), ERROR)
    done = finished(tasks.add(1, 2), DONE)
    assert failed.expires_at - failed.finished_at == WEEK  # AUTOTASK_FAILED_TTL's default
    assert done.expires_at - done.finished_at == timedelta(seconds=300)
    # An hour later, the worker's prune takes the result and keeps the failure.
    maintenance.prune(get_ops("default"), now=timezone.now() + timedelta(hours=1))
    assert list(TaskQueue.objects.values_list("pk", flat=True)) == [failed.pk]


def test_a_task_can_keep_its_failures_until_deleted_or_for_its_own_time(worker_process):
    worker_process()
    forever = finished(tasks.boom.using(failed_ttl=None)(), ERROR)
    hour = finished(tasks.boom.using(failed_ttl=3600)(), ERROR)
    assert forever.expires_at is None
    assert hour.expires_at - hour.finished_at == timedelta(hours=1)
    maintenance.prune(get_ops("default"), now=timezone.now() + timedelta(days=365))
    assert list(TaskQueue.objects.values_list("pk", flat=True)) == [forever.pk]


def test_the_setting_none_keeps_failures_until_deleted(worker_process):
    worker_process(env={"AUTOTASK_TEST_FAILED_TTL": "none"})
    failed = finished(tasks.boom(), ERROR)
    assert failed.expires_at is None


def test_a_failure_recovered_from_a_lost_worker_is_kept_like_any_failure(worker_process):
    lapsed = timezone.now() - timedelta(minutes=5)
    common = {
        "function": "tests.app.tasks.add",
        "status": RUNNING,
        "attempts": 1,
        "max_attempts": 1,
        "worker_id": "gone:1:x",
        "started_at": lapsed,
        "lease_expires_at": lapsed,
    }
    default = TaskQueue.objects.create(**common)
    own = TaskQueue.objects.create(**common, options={"failed_ttl": 60})
    worker_process()
    wait_for(lambda: TaskQueue.objects.filter(status=ERROR).count() == 2, message="both recovered")
    for row, kept in ((default, WEEK), (own, timedelta(seconds=60))):
        row.refresh_from_db()
        assert row.expires_at - row.finished_at == kept
