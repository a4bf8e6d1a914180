"""Unique tasks in the database: the index decides, through every transition of the worker.

Runs on the database of this run (AUTOTASK_TEST_DB): SQLite, PostgreSQL, MariaDB.
"""

import json
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import NewTask, Outcome
from autotask.definitions import unique
from autotask.models import TaskQueue
from autotask.task import CANCELLED, DONE, ERROR, RUNNING, WAITING

pytestmark = pytest.mark.django_db
LEASE = timedelta(seconds=30)


@pytest.fixture
def ops():
    return get_ops()


@pytest.fixture
def now():
    return timezone.now()


def keyed(now, key, scope=unique.ACTIVE, name="t", max_attempts=2):
    return NewTask(
        function="tests.app.tasks.echo",
        args=json.dumps(name),
        created_at=now,
        scheduled_at=now,
        max_attempts=max_attempts,
        unique_key=key,
        unique_scope=scope,
    )


def row(pk):
    return TaskQueue.objects.get(pk=pk)


def finish(ops, pk, status, now, **fields):
    ops.finish("w", [Outcome(id=pk, status=status, finished_at=now, expires_at=now + LEASE, **fields)])


def test_a_duplicate_gets_the_holder_and_stores_nothing(ops, now):
    first, dup = ops.insert_unique(keyed(now, "k")), ops.insert_unique(keyed(now, "k", name="again"))
    assert first[1] is False and dup == (first[0], True)
    other = ops.insert_unique(keyed(now, "other"))
    assert other[1] is False and other[0] != first[0]
    assert TaskQueue.objects.count() == 2
    saved = row(first[0])
    assert (saved.unique_key, saved.unique_scope) == ("k", unique.ACTIVE)


def test_rows_without_a_key_never_conflict(ops, now):
    ops.insert_tasks([keyed(now, None, None), keyed(now, None, None)])
    assert TaskQueue.objects.count() == 2


def test_active_scope_holds_through_claim_retry_release_and_recovery(ops, now):
    pk, _ = ops.insert_unique(keyed(now, "k", max_attempts=3))
    (claimed,) = ops.claim("w", None, 1, now + LEASE, now)
    assert ops.insert_unique(keyed(now, "k")) == (pk, True)  # running: in scope
    finish(ops, pk, WAITING, now, error_message="again", retry_at=now)  # a retry stays in scope
    assert ops.insert_unique(keyed(now, "k")) == (pk, True)
    (claimed,) = ops.claim("w", None, 1, now + LEASE, now, started=False)
    ops.release("w", [claimed])
    assert ops.insert_unique(keyed(now, "k")) == (pk, True)
    ops.claim("w", None, 1, now + LEASE, now)
    assert ops.unclaim_lapsed(now + 2 * LEASE, [pk]) == 0  # started: recovery writes an outcome instead
    assert ops.release_lapsed(now + 2 * LEASE, [Outcome(id=pk, status=WAITING, finished_at=now)]) == [pk]
    assert ops.insert_unique(keyed(now, "k")) == (pk, True)
    ops.claim("w", None, 1, now + LEASE, now)
    finish(ops, pk, DONE, now)  # finished: the key is free
    new, duplicate = ops.insert_unique(keyed(now, "k"))
    assert not duplicate and new != pk


@pytest.mark.parametrize("status", [ERROR, CANCELLED])
def test_active_scope_frees_the_key_when_the_task_fails_or_is_cancelled(ops, now, status):
    pk, _ = ops.insert_unique(keyed(now, "k"))
    TaskQueue.objects.filter(pk=pk).update(status=status)
    assert ops.insert_unique(keyed(now, "k"))[1] is False


def test_waiting_scope_frees_the_key_once_started(ops, now):
    pk, _ = ops.insert_unique(keyed(now, "k", unique.WAITING))
    (claimed,) = ops.claim("w", None, 1, now + LEASE, now, started=False)
    assert ops.insert_unique(keyed(now, "k", unique.WAITING)) == (pk, True)  # claimed ahead: not started
    ops.release("w", [claimed])  # back to waiting: still in scope, no conflict
    assert ops.insert_unique(keyed(now, "k", unique.WAITING)) == (pk, True)
    ops.claim("w", None, 1, now + LEASE, now, started=False)
    assert ops.unclaim_lapsed(now + 2 * LEASE, [pk]) == 1  # recovered: still in scope
    assert ops.insert_unique(keyed(now, "k", unique.WAITING)) == (pk, True)
    ops.claim("w", None, 1, now + LEASE, now, started=False)
    assert ops.start("w", [pk], now) == [pk]  # started: out of scope
    second, duplicate = ops.insert_unique(keyed(now, "k", unique.WAITING))
    assert not duplicate
    # The first one retries: it has started, so it stays out of scope beside the second.
    finish(ops, pk, WAITING, now, error_message="again", retry_at=now)
    assert ops.insert_unique(keyed(now, "k", unique.WAITING)) == (second, True)
    # Claimed ahead again (started_at NULL), the retried row stays out of scope: no conflict.
    claimed = ops.claim("w", None, 2, now + LEASE, now, started=False)
    assert {t.id for t in claimed} == {pk, second}
    assert sorted(ops.start("w", [pk, second], now)) == sorted([pk, second])


def test_waiting_scope_release_of_a_started_row_keeps_its_attempt(ops, now):
    pk, _ = ops.insert_unique(keyed(now, "k", unique.WAITING, max_attempts=1))
    (claimed,) = ops.claim("w", None, 1, now + LEASE, now)  # started
    second, _ = ops.insert_unique(keyed(now, "k", unique.WAITING))
    # Given back with its attempt, it would be "not started" beside the second: it keeps it.
    assert ops.release("w", [claimed]) == 1
    released = row(pk)
    assert (released.status, released.attempts, released.max_attempts) == (WAITING, 1, 2)
    assert ops.insert_unique(keyed(now, "k", unique.WAITING)) == (second, True)


def test_window_scope_holds_in_every_state_until_the_row_is_deleted(ops, now):
    pk, _ = ops.insert_unique(keyed(now, "k@1", unique.WINDOW))
    ops.claim("w", None, 1, now + LEASE, now)
    finish(ops, pk, DONE, now)
    assert ops.insert_unique(keyed(now, "k@1", unique.WINDOW)) == (pk, True)
    assert ops.insert_unique(keyed(now, "k@2", unique.WINDOW))[1] is False  # the next period
    assert ops.prune(now + 2 * LEASE, 10) == 1
    assert ops.insert_unique(keyed(now, "k@1", unique.WINDOW))[1] is False


def test_a_duplicate_inside_a_transaction_leaves_it_usable(ops, now):
    with transaction.atomic():
        pk, _ = ops.insert_unique(keyed(now, "k"))
        assert ops.insert_unique(keyed(now, "k")) == (pk, True)
        TaskQueue.objects.filter(pk=pk).update(priority=5)  # the transaction still works
    assert row(pk).priority == 5


def test_the_index_refuses_a_second_row_in_scope_written_any_other_way(ops, now):
    pk, _ = ops.insert_unique(keyed(now, "k"))
    TaskQueue.objects.filter(pk=pk).update(status=DONE)
    other, _ = ops.insert_unique(keyed(now, "k"))
    with pytest.raises(IntegrityError), transaction.atomic():
        TaskQueue.objects.filter(pk=pk).update(status=WAITING)
    assert (row(pk).status, row(other).status) == (DONE, WAITING)


def test_claim_of_keyed_rows_is_unchanged(ops, now):
    ids = [ops.insert_unique(keyed(now, f"k{i}"))[0] for i in range(5)]
    claimed = ops.claim("w", None, 10, now + LEASE, now)
    assert sorted(t.id for t in claimed) == sorted(ids)
    assert {row(pk).status for pk in ids} == {RUNNING}


def test_a_batch_flags_stored_holders_and_its_own_repeats(ops, now):
    held, _ = ops.insert_unique(keyed(now, "a"))
    batch = [keyed(now, key, name=f"n{i}") for i, key in enumerate(["a", "b", "b", "c", "a"])]
    with transaction.atomic():
        results = ops.insert_unique_many(batch)
    b, c = results[1][0], results[3][0]
    assert results == [(held, True), (b, False), (b, True), (c, False), (held, True)]
    assert json.loads(row(b).args) == "n1"  # the first call of the batch with the key was stored
    assert TaskQueue.objects.count() == 3
    assert ops.insert_unique_many([]) == []
