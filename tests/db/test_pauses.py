"""Paused queues in the claim statements, held against the database this run uses.

The condition lives in ``Driver._queue_filter``, so every claim verb and
every claim path of every vendor must leave a paused queue out, from the
moment the pause is committed.
"""

from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import Outcome
from autotask.maintenance import pauses
from autotask.models import PausedQueue, TaskQueue
from autotask.task import DONE, WAITING
from tests.db.test_contract import LEASE, every_claim_path, in_thread, names, task

pytestmark = pytest.mark.django_db
other_connections = pytest.mark.django_db(transaction=True)  # for tests that commit, seen from elsewhere
VENDOR = connection.vendor


@pytest.fixture
def ops(request):
    variant = getattr(request, "param", None)  # every_claim_path's driver class
    return variant(connection) if variant else get_ops()


@pytest.fixture
def now():
    return timezone.now()


def pause(*queues):
    for queue in queues:
        pauses.pause_queue(queue)


@every_claim_path
@pytest.mark.parametrize(
    ("queues", "expected"),
    [(None, {"a", "c"}), (["b"], set()), (["a", "b"], {"a"}), (["a", "b", "c"], {"a", "c"})],
)
def test_claim_leaves_paused_queues_out(ops, now, queues, expected):
    ops.insert_tasks([task(now, name, queue=name) for name in ("a", "b", "c")])
    pause("b")
    assert set(names(ops.claim("w", queues, 10, now + LEASE, now))) == expected


@every_claim_path
@pytest.mark.parametrize("started", [True, False])
def test_every_claim_verb_leaves_paused_queues_out(ops, now, started):
    ids = ops.insert_tasks([task(now, "first", queue="a")])
    ops.claim("w", None, 1, now + LEASE, now)
    ops.insert_tasks([task(now, "held", queue="paused"), task(now, "free", queue="a")])
    pause("paused")
    outcome = Outcome(id=ids[0], status=DONE, finished_at=now, expires_at=now + timedelta(minutes=5))
    claimed = ops.finish_and_claim("w", [outcome], None, 10, now + LEASE, now, started)
    assert names(claimed) == ["free"]
    assert ops.claim("w", None, 10, now + LEASE, now, started) == []


@every_claim_path
def test_resumed_queue_is_claimed_again(ops, now):
    ops.insert_tasks([task(now, "held", queue="q")])
    pause("q")
    assert ops.claim("w", ["q"], 10, now + LEASE, now) == []
    assert pauses.resume_queue("q") is True
    assert names(ops.claim("w", ["q"], 10, now + LEASE, now)) == ["held"]


def test_next_due_leaves_paused_queues_out(ops, now):
    ops.insert_tasks([task(now, delay=1, queue="paused"), task(now, delay=5, queue="other")])
    pause("paused")
    # A worker must not wake for tasks it may not claim (it would poll without pause).
    assert ops.next_due(None) == now + timedelta(seconds=5)
    assert ops.next_due(["paused"]) is None
    pauses.resume_queue("paused")
    assert ops.next_due(None) == now + timedelta(seconds=1)


@other_connections
def test_a_pause_committed_on_another_connection_holds_for_the_next_claim(ops, now):
    ops.insert_tasks([task(now, "held", queue="q")])
    in_thread(pauses.pause_queue, "q")  # committed once it returns
    assert ops.claim("w", None, 10, now + LEASE, now) == []
    in_thread(pauses.resume_queue, "q")
    assert names(ops.claim("w", None, 10, now + LEASE, now)) == ["held"]


@other_connections
def test_an_uncommitted_pause_holds_nothing_and_blocks_no_claim(ops, now):
    ops.insert_tasks([task(now, "t", queue="q")])
    with transaction.atomic():
        pauses.pause_queue("q")
        # Another connection claims at once (SQLite would wait out this writer: not there).
        if VENDOR != "sqlite":
            assert in_thread(claim_elsewhere, type(ops), now) == ["t"]
        transaction.set_rollback(True)
    assert not PausedQueue.objects.exists()


def claim_elsewhere(ops_class, now):
    """Claim on this thread's own connection."""
    return names(ops_class(connections["default"]).claim("w", None, 10, now + LEASE, now))


@other_connections
@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite has one writer: nothing to hold open beside it")
def test_an_open_claim_does_not_lock_the_paused_table(ops, now):
    ops.insert_tasks([task(now, "t", queue="a")])
    with transaction.atomic():
        assert names(ops.claim("w", None, 10, now + LEASE, now)) == ["t"]
        # The claim's FOR UPDATE locks task rows only: pausing and resuming do not wait for it.
        assert in_thread(pauses.pause_queue, "b") is True
        assert in_thread(pauses.resume_queue, "b") is True


def test_pausing_twice_and_resuming_what_is_not_paused(db):
    assert pauses.pause_queue("q", by="me") is True
    assert pauses.pause_queue("q") is False
    assert list(PausedQueue.objects.values_list("name", "paused_by")) == [("q", "me")]
    assert pauses.resume_queue("q") is True
    assert pauses.resume_queue("q") is False


@pytest.mark.parametrize("name", ["", "x" * 101, None, 3, b"q", ["q"]])
def test_a_name_no_queue_can_have_is_refused(db, name):
    with pytest.raises(ValueError, match="queue"):
        pauses.pause_queue(name)
    assert not PausedQueue.objects.exists()


def test_the_public_names(db):
    import autotask

    assert autotask.pause_queue("q") is True
    assert autotask.resume_queue("q") is True
    assert {"pause_queue", "resume_queue", "pause_schedule", "resume_schedule"} <= set(dir(autotask))
    with pytest.raises(AttributeError):
        autotask.no_such_name  # noqa: B018


def test_paused_tasks_stay_waiting(ops, now):
    (pk,) = ops.insert_tasks([task(now, "t", queue="q")])
    pause("q")
    ops.claim("w", None, 10, now + LEASE, now)
    assert TaskQueue.objects.get(pk=pk).status == WAITING


# -- plans: a paused queue keeps the claim an index scan in claim order -----------------


@pytest.mark.parametrize(
    ("queues", "index"), [(None, "autotask_claim_all_idx"), (["q1"], "autotask_claim_idx")]
)
def test_claim_with_a_paused_queue_still_reads_the_claim_index_in_order(ops, now, queues, index):
    from tests.db.test_contract import explain, fill_history

    fill_history(ops, now)
    pause("q2")
    plan = explain(ops, queues, now)
    if VENDOR == "postgresql":
        text = "\n".join(row["query plan"] for row in plan)
        assert f"Index Scan using {index}" in text, text
        assert "Sort" not in text and "Seq Scan on autotask_taskqueue" not in text, text
        assert "hashed SubPlan" in text, text  # the paused queues read once per claim
    elif VENDOR == "mysql":
        (row,) = [row for row in plan if row["table"] == "autotask_taskqueue"]
        assert row["key"] == index and "filesort" not in (row["extra"] or ""), plan
    else:
        details = [row["detail"] for row in plan]
        assert any(index in d or "autotask_claim_all_idx" in d for d in details), details
        assert not any("TEMP B-TREE" in d for d in details), details
    claimed = ops.claim("w", queues, 1000, now + LEASE, now)
    assert claimed and not any(t.queue == "q2" for t in claimed)
