"""A lost worker's tasks that were asked to stop end CANCELLED when recovered: a stop is never retried."""

import pytest
from django.utils import timezone

from autotask.db import get_ops
from autotask.maintenance import recovery as maintenance
from autotask.models import TaskQueue
from autotask.task import CANCELLED, WAITING
from tests.recovery.test_recover_pass import abandoned

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lost_workers_stopped_tasks_are_cancelled_not_retried():
    started = abandoned(3, max_attempts=3)
    unstarted = abandoned(2, started=False)
    asked = [started[0], unstarted[0]]
    assert TaskQueue.objects.filter(pk__in=asked).stop_running(timezone.now()) == 2
    count, finished = maintenance.recover(get_ops())
    assert (count, finished) == (5, True)
    rows = {row.pk: row for row in TaskQueue.objects.all()}
    assert rows[started[0]].status == CANCELLED and rows[started[0]].attempts == 1
    assert rows[started[0]].error_message.startswith("stopped on request: the worker running this task")
    assert rows[started[0]].history[-1]["exception"] == "autotask.exceptions.WorkerLost"
    assert rows[unstarted[0]].status == CANCELLED and rows[unstarted[0]].attempts == 0
    assert [rows[pk].status for pk in (*started[1:], *unstarted[1:])] == [WAITING] * 3  # retried, given back
