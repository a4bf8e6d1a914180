"""autotask.testing: run_due, enqueued and eager in the test process; signals and log records."""

import logging
from datetime import timedelta
from unittest.mock import call

import pytest
from django.db import connection, transaction
from django.utils import timezone

from autotask import testing
from autotask.models import TaskQueue
from autotask.signals import task_enqueued, task_finished, task_started
from autotask.tasks import DONE, ERROR, WAITING, delayed_task, periodic_task
from tests.app import tasks
from tests.app.models import Record
from tests.conftest import records

pytestmark = pytest.mark.django_db


# Tasks only these tests use (run in this process, never by a worker process).


@delayed_task
def chain(n):
    """Enqueue the next link until ``n`` reaches 0."""
    tasks.record.run(f"chain-{n}")
    if n:
        chain(n - 1)
    return n


@delayed_task
def forever():
    forever()


@delayed_task
def write_then_fail(key):
    tasks.record.run(key)
    raise RuntimeError("after writing")


def every_minute():
    tasks.record.run("periodic")


@pytest.fixture(autouse=True)
def _no_foreign_schedules(isolated_schedules):
    """Keep periodic tasks other test modules declared out of run_due's tick."""


# -- run_due -----------------------------------------------------------------


def test_run_due_runs_what_is_due_in_order_and_returns_it():
    low = tasks.add.using(priority=-5)(1, 1)
    high = tasks.add.using(priority=5)(2, 2)
    later = tasks.add.using(delay=3600)(3, 3)
    failing = tasks.boom()

    ran = testing.run_due()

    assert [r.pk for r in ran] == [high.pk, failing.pk, low.pk]  # priority first
    assert [(r.name, r.status, r.result) for r in (ran[0], ran[2])] == [
        ("tests.app.tasks.add", DONE, 4),
        ("tests.app.tasks.add", DONE, 2),
    ]
    assert ran[1].status == ERROR and ran[1].error == "boom" and "ValueError: boom" in ran[1].traceback
    assert ran[0].task.result == 4 and ran[1].task.status == ERROR
    assert later.status == WAITING
    assert testing.run_due() == []


def test_run_due_with_a_later_now_runs_delayed_tasks():
    later = tasks.add.using(delay=3600)(3, 3)
    assert testing.run_due(now=timezone.now() + timedelta(minutes=59)) == []
    ran = testing.run_due(now=timezone.now() + timedelta(hours=2))
    assert [r.pk for r in ran] == [later.pk]
    assert later.result == 6


def test_run_due_limits_to_queues():
    mail = tasks.add.using(queue="mail")(1, 2)
    other = tasks.add(5, 5)
    assert [r.pk for r in testing.run_due(queues=["mail"])] == [mail.pk]
    assert other.status == WAITING


def test_run_due_runs_tasks_that_tasks_enqueue():
    chain(2)
    ran = testing.run_due()
    assert [r.result for r in ran] == [2, 1, 0]
    assert records("chain-") == ["chain-2", "chain-1", "chain-0"]


def test_run_due_stops_a_task_that_keeps_enqueueing_itself():
    forever()
    with pytest.raises(RuntimeError, match="run_due ran 5 tasks and more are still due"):
        testing.run_due(max_tasks=5)


def test_a_retry_is_due_after_its_backoff(tmp_path):
    handle = tasks.flaky.using(retry_delay=60)(str(tmp_path), 1)
    [first] = testing.run_due()
    assert first.status == WAITING and first.error == "failure 1"
    assert testing.run_due() == []
    [second] = testing.run_due(now=timezone.now() + timedelta(minutes=5))
    assert second.status == DONE and handle.result == 1 and handle.attempts == 2


def test_run_due_enqueues_due_periodic_runs_first():
    periodic_task(seconds=60, start_now=True)(every_minute)
    ran = testing.run_due()
    assert [(r.name, r.status) for r in ran] == [(f"{__name__}.every_minute", DONE)]
    assert records("periodic") == ["periodic"]
    assert testing.run_due() == []  # the next run is a minute away


def test_failed_attempt_is_rolled_back_and_the_test_transaction_survives():
    handle = write_then_fail("half-done")
    [ran] = testing.run_due()
    assert ran.status == ERROR and ran.error == "after writing"
    assert records("half-done") == []
    # The connection and the test's transaction are still usable.
    assert connection.in_atomic_block
    assert TaskQueue.objects.get(pk=handle.pk).status == ERROR


# -- enqueued ----------------------------------------------------------------


def test_enqueued_lists_calls_in_order():
    tasks.echo(1, (2, 3), key={"a": timezone.datetime(2026, 1, 2)})
    tasks.echo()
    tasks.add(1, 2)
    assert testing.enqueued(tasks.echo) == [call(1, (2, 3), key={"a": timezone.datetime(2026, 1, 2)}), call()]
    assert testing.enqueued("tests.app.tasks.add") == [call(1, 2)]
    assert testing.enqueued(tasks.add.func) == [call(1, 2)]
    assert testing.enqueued(tasks.boom) == []


def test_enqueued_counts_run_tasks_unless_narrowed_by_status():
    tasks.add(1, 2)
    testing.run_due()
    tasks.add(3, 4)
    assert testing.enqueued(tasks.add) == [call(1, 2), call(3, 4)]
    assert testing.enqueued(tasks.add, status=WAITING) == [call(3, 4)]
    assert testing.enqueued(tasks.add, status=DONE) == [call(1, 2)]


def test_enqueued_respects_rollback():
    with transaction.atomic():
        tasks.add(1, 2)
        transaction.set_rollback(True)
    assert testing.enqueued(tasks.add) == []


# -- eager -------------------------------------------------------------------


def test_eager_runs_before_the_call_returns():
    with testing.eager() as block:
        handle = tasks.add.using(delay=3600)(20, 22)
        assert handle.status == DONE
        assert handle.result == 42
    assert [(r.pk, r.result) for r in block.ran] == [(handle.pk, 42)]
    after = tasks.add(1, 1)
    assert after.status == WAITING  # outside the block tasks wait for a worker again


def test_eager_runs_retries_at_once(tmp_path):
    with testing.eager() as block:
        handle = tasks.flaky(str(tmp_path), 2)
    assert handle.status == DONE and handle.result == 2 and handle.attempts == 3
    assert [r.status for r in block.ran] == [WAITING, WAITING, DONE]


def test_eager_records_failures_and_can_raise_them():
    with testing.eager():
        handle = tasks.boom()
    assert handle.status == ERROR and handle.error_message == "boom"
    with testing.eager(raise_errors=True), pytest.raises(testing.TaskFailed, match=r"boom #\d+ failed: boom"):
        tasks.boom()


def test_eager_runs_nested_enqueues_and_bulk_enqueues():
    with testing.eager():
        assert chain(1).result == 1
        handles = tasks.add.enqueue_many([(1, 1), (2, 2)])
    assert records("chain-") == ["chain-1", "chain-0"]
    assert [h.result for h in handles] == [2, 4]


def test_eager_as_decorator_and_nested_blocks_run_a_task_once():
    @testing.eager()
    def enqueue_twice_nested():
        with testing.eager():
            return tasks.record("once")

    handle = enqueue_twice_nested()
    assert handle.status == DONE
    assert records("once") == ["once"]


def test_eager_rolls_back_a_failed_attempt_only():
    with testing.eager():
        tasks.record("kept")
        write_then_fail("undone")
    assert records() == ["kept"]
    assert Record.objects.count() == 1  # the test transaction is still usable


# -- signals and log records -------------------------------------------------


def test_signals_around_a_tasks_life():
    seen = []

    def receiver(signal, **kwargs):
        seen.append((signal, kwargs))

    for signal in (task_enqueued, task_started, task_finished):
        signal.connect(receiver)
    try:
        handle = tasks.add(2, 3)
        testing.run_due()
    finally:
        for signal in (task_enqueued, task_started, task_finished):
            signal.disconnect(receiver)
    assert [s for s, _ in seen] == [task_enqueued, task_started, task_finished]
    enqueued, started, finished = (kwargs for _, kwargs in seen)
    assert enqueued["task"] == handle and enqueued["name"] == "tests.app.tasks.add"
    assert enqueued["sender"] is tasks.add
    assert (started["task_id"], started["name"], started["attempt"]) == (handle.pk, "tests.app.tasks.add", 1)
    assert finished["status"] == DONE and finished["error"] == "" and finished["duration"] >= 0


def test_log_records_carry_structured_extra(caplog):
    ok, bad = tasks.add(1, 2), tasks.boom()
    with caplog.at_level(logging.DEBUG, logger="autotask"):
        testing.run_due()
    finished = [r for r in caplog.records if hasattr(r, "outcome")]
    by_task = {r.task_id: r for r in finished}
    assert set(by_task) == {ok.pk, bad.pk}
    done, failed = by_task[ok.pk], by_task[bad.pk]
    assert (done.function, done.attempt, done.outcome, done.levelno) == (
        "tests.app.tasks.add",
        1,
        "done",
        logging.INFO,
    )
    assert done.duration >= 0
    assert (failed.outcome, failed.levelno) == ("error", logging.ERROR)
    # Logged with the exception, as logger.exception would: error trackers get the traceback.
    assert failed.exc_info and failed.exc_info[0] is ValueError
