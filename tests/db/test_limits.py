"""Concurrency and rate limits in the database: admissions, the rate gate, and what shows them.

Runs on the database of this run (AUTOTASK_TEST_DB): SQLite, PostgreSQL, MariaDB.
The multi-process proofs are in tests/concurrency/test_limits.py.
"""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from autotask import monitor
from autotask.db import flow, get_ops
from autotask.enqueue.handle import DelayedTask
from autotask.models import FlowKey, RateStart, TaskQueue
from autotask.task import CANCELLED, DONE, ERROR, HELD, RUNNING, WAITING
from tests.app import limited_tasks

pytestmark = pytest.mark.django_db
LEASE = timedelta(seconds=30)


@pytest.fixture
def ops():
    return get_ops()


def statuses(key):
    rows = TaskQueue.objects.filter(concurrency_key=key).order_by("id")
    return [row.status for row in rows]


def test_a_limited_task_is_stored_held_and_admitted_once_committed(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        handles = [limited_tasks.limited(1, n) for n in range(4)]
    row = TaskQueue.objects.get(pk=handles[0].pk)
    assert (row.status, row.concurrency_key, row.concurrency_limit) == (HELD, "group-1", 2)
    assert row.options["concurrency_key"] == "group-1"
    assert statuses("group-1") == [HELD] * 4  # nothing admitted before the commit
    for callback in callbacks:
        callback()
    assert statuses("group-1") == [WAITING, WAITING, HELD, HELD]


def test_admission_keeps_to_the_limit_and_frees_a_slot_per_finished_task(ops):
    ids = [h.pk for h in limited_tasks.limited.enqueue_many([(2, n) for n in range(5)])]
    now = timezone.now()
    assert flow.admit(ops, now, ["group-2"]) == 2
    assert flow.admit(ops, now) == 0  # the sweep too: the key is full
    assert statuses("group-2") == [WAITING, WAITING, HELD, HELD, HELD]
    claimed = ops.claim("w", None, 10, now + LEASE, now)
    assert sorted(task.id for task in claimed) == ids[:2]  # a claim never takes a held task
    assert flow.admit(ops, now, ["group-2"]) == 0  # running tasks hold their slots
    TaskQueue.objects.filter(pk=ids[0]).update(status=DONE)
    assert flow.admit(ops, now) == 1
    assert statuses("group-2") == [DONE, RUNNING, WAITING, HELD, HELD]
    TaskQueue.objects.filter(pk__in=ids[1:3]).update(status=ERROR)
    assert flow.admit(ops, now, ["group-2"]) == 2
    assert statuses("group-2") == [DONE, ERROR, ERROR, WAITING, WAITING]


def test_admission_goes_by_priority_then_time_and_waits_for_a_delay(ops):
    low = limited_tasks.limited.using(priority=-5)(3, 0)
    later = limited_tasks.limited.using(delay=3600)(3, 1)
    high = limited_tasks.limited.using(priority=5)(3, 2)
    plain = limited_tasks.limited(3, 3)
    now = timezone.now()
    assert flow.admit(ops, now, ["group-3"]) == 2
    admitted = set(TaskQueue.objects.filter(status=WAITING).values_list("pk", flat=True))
    assert admitted == {high.pk, plain.pk}
    TaskQueue.objects.filter(pk__in=admitted).update(status=DONE)
    assert flow.admit(ops, now) == 1  # the delayed one is not due
    assert TaskQueue.objects.get(pk=low.pk).status == WAITING
    assert TaskQueue.objects.get(pk=later.pk).status == HELD
    assert flow.admit(ops, now + timedelta(hours=2)) == 1
    assert TaskQueue.objects.get(pk=later.pk).status == WAITING


def test_keys_are_independent_and_shared_across_tasks(ops):
    limited_tasks.limited.enqueue_many([(4, n) for n in range(3)] + [(5, n) for n in range(3)])
    shared = limited_tasks.one_at_a_time.using(concurrency_key="group-4", concurrency_limit=2)
    shared(99)
    now = timezone.now()
    assert flow.admit(ops, now) == 4
    assert statuses("group-4").count(WAITING) == 2
    assert statuses("group-5").count(WAITING) == 2
    assert statuses("group-4").count(HELD) == 2  # the other task's call waits for the shared key


def test_a_held_task_can_be_cancelled_and_a_failed_one_is_retried_held(ops):
    first, second = limited_tasks.limited(6, 0), limited_tasks.limited(6, 1)
    flow.admit(ops, timezone.now(), ["group-6"])
    third = limited_tasks.limited(6, 2)
    assert TaskQueue.objects.get(pk=third.pk).status == HELD
    assert DelayedTask(third.pk).cancel()
    assert TaskQueue.objects.get(pk=third.pk).status == CANCELLED
    TaskQueue.objects.filter(pk=first.pk).update(status=ERROR)
    assert TaskQueue.objects.filter(pk=first.pk).retry_failed() == 1
    assert TaskQueue.objects.get(pk=first.pk).status == HELD  # back through an admission
    assert flow.admit(ops, timezone.now(), ["group-6"]) == 1  # second holds the other slot
    assert TaskQueue.objects.get(pk=second.pk).status == WAITING


def rated_claim(ops, count, started=True):
    """Enqueue ``count`` calls of the rated task, claim them; (the claimed tasks, the claim's instant)."""
    limited_tasks.rated.enqueue_many([("g", n) for n in range(count)])
    now = timezone.now()
    claimed = ops.claim("w", None, count, now + LEASE, now, started)
    return [task for task in claimed if task.function.endswith(".rated")], now


def test_the_gate_lets_the_rate_through_and_gives_the_rest_back(ops):
    claimed, now = rated_claim(ops, 7)
    through, back = flow.gate(ops, "w", claimed, now, started=True)
    assert len(through) == 5 and len(back) == 2
    assert [t.id for t in through] == [t.id for t in claimed[:5]]  # in claim order
    for task in back:
        row = TaskQueue.objects.get(pk=task.id)
        assert (row.status, row.attempts, row.worker_id, row.started_at) == (WAITING, 0, "", None)
        assert now + timedelta(seconds=1) <= row.scheduled_at <= now + timedelta(seconds=2)
    assert RateStart.objects.filter(key="rate-g").count() == 5
    # The window is full: a later start within it is given back too.
    soon = now + timedelta(milliseconds=500)
    again = ops.claim("w", None, 5, soon + LEASE, soon + timedelta(seconds=5))
    through, back = flow.gate(ops, "w", again, soon, started=True)
    assert (len(through), len(back)) == (0, 2)
    # Once the window has passed, they start.
    later = now + timedelta(seconds=3)
    again = ops.claim("w", None, 5, later + LEASE, later)
    through, back = flow.gate(ops, "w", again, later, started=True)
    assert (len(through), len(back)) == (2, 0)
    assert FlowKey.objects.get(key="r:rate-g").limit == 5


def test_the_gate_marks_claimed_ahead_tasks_started(ops):
    claimed, now = rated_claim(ops, 6, started=False)
    through, back = flow.gate(ops, "w", claimed, now, started=False)
    assert (len(through), len(back)) == (5, 1)
    rows = TaskQueue.objects.filter(pk__in=[t.id for t in through])
    assert {(row.attempts, row.status) for row in rows} == {(1, RUNNING)}
    assert {row.started_at for row in rows} == {now}
    refused = TaskQueue.objects.get(pk=back[0].id)
    assert (refused.status, refused.attempts) == (WAITING, 0)


def test_the_monitor_and_autotask_status_show_the_keys(ops):
    claimed, later = rated_claim(ops, 1)
    flow.gate(ops, "w", claimed, later, started=True)
    limited_tasks.limited.enqueue_many([(7, n) for n in range(3)])
    now = timezone.now()
    flow.admit(ops, now, ["group-7"])
    ops.claim("w", None, 1, now + LEASE, now)  # one of the two admitted
    found = monitor.limits()
    assert {"key": "group-7", "limit": 2, "running": 1, "admitted": 1, "held": 1} in found["concurrency"]
    assert {"key": "rate-g", "limit": 5, "window": 1.0, "started_in_window": 1} in found["rates"]
    out = io.StringIO()
    with pytest.raises(SystemExit):  # no worker alive: unhealthy, but it reports
        call_command("autotask_status", "--json", stdout=out, stderr=io.StringIO())
    data = json.loads(out.getvalue())
    assert data["limits"] == json.loads(json.dumps(found))
    assert data["totals"]["held"] == 1
    text = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("autotask_status", stdout=text, stderr=io.StringIO())
    assert "concurrency group-7: running 1/2, admitted 1, waiting for a slot 1" in text.getvalue()


def test_the_testing_helpers_run_limited_tasks(django_capture_on_commit_callbacks):
    from autotask.testing import eager, run_due

    with django_capture_on_commit_callbacks(execute=False):  # no admission: run_due admits
        handles = [limited_tasks.limited(8, n, 0) for n in range(3)]
    mine = {h.pk for h in handles}
    ran = [r for r in run_due() if r.pk in mine]  # run_due also runs what other tests declared
    assert sorted(r.pk for r in ran) == sorted(mine)
    assert set(TaskQueue.objects.filter(pk__in=mine).values_list("status", flat=True)) == {DONE}
    with eager() as block:
        handle = limited_tasks.limited(8, 9, 0)
    assert [r.pk for r in block.ran] == [handle.pk]
    assert TaskQueue.objects.get(pk=handle.pk).status == DONE


@pytest.mark.django_db(transaction=True)
def test_an_admission_whose_flow_row_was_deleted_locks_it_again(ops):
    limited_tasks.limited.enqueue_many([(9, n) for n in range(3)])
    now = timezone.now()
    flow.admit(ops, now, ["group-9"])  # the flow row exists, and this process knows it
    TaskQueue.objects.filter(concurrency_key="group-9", status=WAITING).update(status=DONE)
    FlowKey.objects.filter(key="c:group-9").delete()
    try:
        admitted = flow.admit(ops, now, ["group-9"])
    except flow.MissingFlowRow:  # PostgreSQL's one-round-trip admission: rolled back, tried again
        assert statuses("group-9").count(WAITING) == 0
        admitted = flow.admit(ops, now, ["group-9"])
    assert admitted == 1
    assert FlowKey.objects.filter(key="c:group-9").exists()
