"""Delayed tasks end to end: real worker processes against the test database."""

import os

import pytest
from django.db import transaction

from autotask.models import TaskQueue
from autotask.tasks import DONE, ERROR, WAITING, DelayedTask
from tests.app import tasks
from tests.conftest import records, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def finished(*handles):
    return lambda: all(h.ready for h in handles)


def test_result_and_status_round_trip(worker_process):
    worker_process()
    handle = tasks.add(2, 3)
    assert handle.status in (WAITING, 2, DONE)
    assert wait_for(finished(handle), message="add to finish")
    assert handle.status == DONE
    assert handle.result == 5
    assert handle.error_message == ""
    assert handle.attempts == 1


def test_types_round_trip_through_worker(worker_process):
    import datetime
    import decimal
    import uuid

    value = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "amount": decimal.Decimal("1.10"),
        "id": uuid.UUID(int=7),
        "pair": (1, 2),
        "tags": {"a"},
        (1, 2): b"\x00bytes",
    }
    worker_process()
    handle = tasks.echo(value, key=(3,))
    assert handle.wait(15)
    assert handle.result == [[value], {"key": (3,)}]


def test_failure_records_message_and_traceback(worker_process):
    worker_process()
    handle = tasks.boom()
    assert handle.wait(15)
    assert handle.status == ERROR
    assert handle.error_message == "boom"
    assert "ValueError: boom" in handle.traceback
    assert handle.result is None


def test_retries_then_success(worker_process, tmp_path):
    worker_process()
    handle = tasks.flaky(str(tmp_path), 2)  # retries=2: three runs at most
    assert handle.wait(15)
    assert handle.status == DONE
    assert handle.result == 2
    assert handle.attempts == 3
    history = TaskQueue.objects.get(pk=handle.pk).history
    assert [h.get("error") for h in history] == ["failure 1", "failure 2", None]


def test_retries_exhausted_is_error(worker_process, tmp_path):
    worker_process()
    handle = tasks.flaky(str(tmp_path), 5)
    assert handle.wait(15)
    assert handle.status == ERROR
    assert handle.attempts == 3
    assert handle.error_message == "failure 3"


def test_sys_exit_is_recorded_and_worker_goes_on(worker_process):
    worker_process()
    bad = tasks.exits()
    good = tasks.add(1, 1)
    assert wait_for(finished(bad, good))
    assert bad.status == ERROR
    assert "sys.exit(3)" in bad.error_message
    assert good.result == 2


def test_async_task(worker_process):
    worker_process()
    handle = tasks.async_add(4, 5)
    assert handle.wait(15)
    assert handle.result == 9


def test_unserialisable_result_is_error_not_done(worker_process):
    worker_process()
    handle = tasks.unserialisable_result()
    assert handle.wait(15)
    assert handle.status == ERROR
    assert "return value cannot be stored" in handle.error_message


def test_signature_mismatch_is_error_without_retry(worker_process):
    worker_process()
    handle = tasks.two_args(1)  # stored arguments no longer fit
    assert handle.wait(15)
    assert handle.status == ERROR
    assert "no longer match the signature" in handle.error_message
    assert "missing a required argument: 'b'" in handle.error_message


def test_unknown_function_is_error_and_others_run(worker_process):
    from autotask.definitions.options import TaskOptions
    from autotask.enqueue import enqueue

    missing = DelayedTask(enqueue("tests.app.tasks.no_such_function", (), {}, TaskOptions()))
    missing_module = DelayedTask(enqueue("tests.app.gone.func", (), {}, TaskOptions()))
    good = tasks.add(2, 2)
    worker_process()
    assert wait_for(finished(missing, missing_module, good))
    assert missing.status == ERROR
    assert "tests.app.tasks.no_such_function not found" in missing.error_message
    assert missing_module.status == ERROR
    assert "tests.app.gone" in missing_module.error_message
    assert good.result == 4


def test_corrupt_payload_is_error_and_others_run(worker_process):
    corrupt = tasks.add(1, 2)
    TaskQueue.objects.filter(pk=corrupt.pk).update(args='{"not": valid json')
    good = tasks.add(3, 4)
    worker_process()
    assert wait_for(finished(corrupt, good))
    assert corrupt.status == ERROR
    assert "cannot be decoded" in corrupt.error_message
    assert good.result == 7


def test_rolled_back_enqueue_never_runs(worker_process):
    worker_process()
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.record("rolled-back")
        raise RuntimeError("roll back")
    marker = tasks.record("committed")
    assert marker.wait(15)
    assert records() == ["committed"]
    assert not TaskQueue.objects.filter(args__contains="rolled-back").exists()


def test_enqueue_in_transaction_runs_only_after_commit(worker_process):
    worker_process()
    with transaction.atomic():
        handle = tasks.record("inside")
        # The worker cannot see the row before commit, however long we wait here.
        probe = tasks.add(0, 0)
    assert wait_for(finished(handle, probe))
    assert records() == ["inside"]


def test_delay_is_honoured(worker_process):
    worker_process()
    handle = tasks.add.using(delay=1.0)(1, 1)
    row = TaskQueue.objects.get(pk=handle.pk)
    assert (row.scheduled_at - row.created_at).total_seconds() == pytest.approx(1.0, abs=0.01)
    assert handle.wait(15)
    row.refresh_from_db()
    assert row.started_at >= row.scheduled_at


def test_cancel_waiting_task(worker_process):
    handle = tasks.record.using(delay=30)("cancelled")
    assert handle.cancel() is True
    assert handle.cancel() is False
    assert handle.ready is True
    worker_process()
    probe = tasks.add(1, 1)
    assert probe.wait(15)
    assert records() == []


def test_priority_orders_claims(worker_process):
    low = [tasks.record.using(priority=-5)(f"low{i}") for i in range(3)]
    high = [tasks.record.using(priority=50)(f"high{i}") for i in range(3)]
    worker_process()
    assert wait_for(finished(*low, *high))
    assert records() == ["high0", "high1", "high2", "low0", "low1", "low2"]


def test_queues_option_selects_work(worker_process):
    other = tasks.record.using(queue="other")("other")
    mine = tasks.record.using(queue="mine")("mine")
    worker_process("--queues", "mine")
    assert mine.wait(15)
    assert other.status == WAITING
    worker_process("--queues", "other,elsewhere")
    assert other.wait(15)


def test_bulk_enqueue_runs_all(worker_process):
    handles = tasks.record.enqueue_many((f"bulk{i}",) for i in range(50))
    assert len({h.pk for h in handles}) == 50
    worker_process("--concurrency", "4")
    assert wait_for(finished(*handles), timeout=30)
    assert sorted(records("bulk")) == sorted(f"bulk{i}" for i in range(50))


def test_drain_mode_exits_when_nothing_due(worker_process):
    handles = [tasks.add(i, i) for i in range(5)]
    future = tasks.add.using(delay=60)(0, 0)
    worker = worker_process("--drain")
    code, out = worker.wait(30)
    assert code == 0, out
    assert [h.result for h in handles] == [0, 2, 4, 6, 8]
    assert future.status == WAITING


def test_sigterm_finishes_current_task_then_exits(worker_process):
    worker = worker_process()
    running = tasks.sleep_then_record("graceful", 1.5)
    queued = tasks.record("not-started")
    wait_for(lambda: TaskQueue.objects.filter(pk=running.pk, status=2).exists())
    worker.signal(15)
    code, out = worker.wait(30)
    assert code == 0, out
    assert running.status == DONE
    assert queued.status == WAITING
    assert records() == ["graceful"]


def test_worker_survives_missing_results(worker_process):
    worker_process()
    handle = tasks.add(1, 2)
    assert handle.wait(15)
    TaskQueue.objects.filter(pk=handle.pk).delete()
    assert handle.status is None
    assert handle.ready is None
    assert handle.result is None
    assert handle.error_message == ""
    assert DelayedTask(10**12).ready is None


def test_worker_uses_its_own_pid_for_task_code(worker_process):
    worker = worker_process()
    handle = tasks.record("pid")
    assert handle.wait(15)
    from tests.app.models import Record

    assert Record.objects.get(key="pid").pid == worker.pid
    assert worker.pid != os.getpid()
