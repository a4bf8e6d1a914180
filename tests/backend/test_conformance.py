"""autotask as a backend for Django's tasks framework: conformance with real worker processes.

Runs on Django 6.x (``django.tasks``) and on Django 5.2 with the ``django-tasks``
backport, on every test database.
"""

import asyncio
import sys
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.checks import run_checks
from django.db import connection, connections, transaction
from django.test import modify_settings, override_settings
from django.utils import timezone

framework = pytest.importorskip("autotask.backend", reason="no tasks framework installed")

from autotask import checks as autotask_checks  # noqa: E402
from autotask.backend import (  # noqa: E402  # noqa: E402
    AutotaskBackend,
    AutotaskTask,
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
    task_backends,
)
from autotask.definitions import schedules as scheduler  # noqa: E402
from autotask.maintenance import scheduling  # noqa: E402
from autotask.models import KIND_FRAMEWORK, Schedule, TaskQueue  # noqa: E402
from autotask.task import CANCELLED, DONE  # noqa: E402
from autotask.task import RUNNING as RUNNING_ROW  # noqa: E402
from autotask.tasks import DelayedTask  # noqa: E402
from tests.app import framework_tasks as ft  # noqa: E402
from tests.app import tasks as autotask_tasks  # noqa: E402
from tests.conftest import records, wait_for  # noqa: E402

if framework.FRAMEWORK == "django.tasks":
    from django.tasks import TaskResultStatus, default_task_backend
    from django.tasks.exceptions import TaskResultMismatch
    from django.tasks.signals import task_enqueued
else:
    from django_tasks import TaskResultStatus, default_task_backend
    from django_tasks.exceptions import TaskResultMismatch
    from django_tasks.signals import task_enqueued

READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING
SUCCESSFUL, FAILED = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED


def finished(task, result_id):
    """Poll ``result_id`` until it has finished; return its result."""
    return wait_for(lambda: (r := task.get_result(result_id)).is_finished and r, message=f"task {result_id}")


def run_async(coro):
    """Run ``coro``, then close the connections its ORM calls opened in asgiref's thread.

    Left open, they would outlive the test and block dropping the test database.
    """

    async def run():
        try:
            return await coro
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(run())


def row_count():
    return TaskQueue.objects.count()


# -- without a worker --------------------------------------------------------


@pytest.mark.django_db
class TestEnqueue:
    def test_backend_declares_its_features(self):
        backend = task_backends["default"]
        assert isinstance(backend, AutotaskBackend)
        assert backend.supports_defer and backend.supports_priority
        assert backend.supports_async_task and backend.supports_get_result
        assert type(ft.add) is AutotaskTask

    def test_enqueue_stores_a_framework_row_and_returns_a_ready_result(self):
        before = timezone.now()
        result = ft.add.enqueue(2, b=3)
        assert result.status == READY
        assert result.id.isdigit()
        assert result.args == [2] and result.kwargs == {"b": 3}
        assert result.backend == "default"
        assert result.errors == [] and result.worker_ids == []
        assert result.started_at is None and result.finished_at is None and result.last_attempted_at is None
        assert before <= result.enqueued_at <= timezone.now()
        with pytest.raises(ValueError, match="not finished"):
            _ = result.return_value
        row = TaskQueue.objects.get(pk=int(result.id))
        assert (row.kind, row.function, row.queue, row.priority) == (
            KIND_FRAMEWORK,
            "tests.app.framework_tasks.add",
            "default",
            0,
        )
        fetched = ft.add.get_result(result.id)
        assert (fetched.status, fetched.args, fetched.kwargs) == (READY, [2], {"b": 3})
        assert fetched.enqueued_at == row.created_at
        assert fetched.task.func is ft.add.func

    def test_priority_queue_and_run_after_are_stored_and_read_back(self):
        when = timezone.now() + timedelta(hours=1)
        task = ft.record.using(priority=42, queue_name="other", run_after=when)
        result = task.enqueue("later")
        row = TaskQueue.objects.get(pk=int(result.id))
        assert (row.priority, row.queue, row.scheduled_at) == (42, "other", when)
        fetched = default_task_backend.get_result(result.id)
        assert (fetched.task.priority, fetched.task.queue_name, fetched.task.run_after) == (42, "other", when)

    def test_enqueue_in_a_rolled_back_transaction_leaves_nothing(self):
        before = row_count()
        with pytest.raises(RuntimeError), transaction.atomic():
            ft.add.enqueue(1, 1)
            raise RuntimeError("roll back")
        assert row_count() == before

    def test_get_result_while_running(self):
        row_id = int(ft.add.enqueue(1, 2).id)
        # Put the row where a claim puts it, to read the RUNNING mapping without a race.
        started = timezone.now()
        TaskQueue.objects.filter(pk=row_id).update(
            status=RUNNING_ROW, worker_id="host:1:abc", started_at=started
        )
        running = default_task_backend.get_result(str(row_id))
        assert running.status == RUNNING and running.worker_ids == ["host:1:abc"]
        assert running.started_at == running.last_attempted_at == started
        assert not running.is_finished

    def test_get_result_while_claimed_ahead_reads_ready(self):
        row_id = int(ft.add.enqueue(1, 2).id)
        # Claimed by a worker ahead of a free slot: not started, no attempt under way.
        TaskQueue.objects.filter(pk=row_id).update(
            status=RUNNING_ROW, worker_id="host:1:abc", started_at=None
        )
        claimed = default_task_backend.get_result(str(row_id))
        assert (claimed.status, claimed.worker_ids, claimed.last_attempted_at) == (READY, [], None)


@pytest.mark.django_db
class TestValidation:
    def test_queue_not_in_queues_is_rejected_before_storing(self):
        before = row_count()
        with pytest.raises(InvalidTask, match="Queue 'nowhere' is not valid"):
            ft.add.using(queue_name="nowhere")
        # Enqueue validates too: a task of a backend that allows any queue, sent to "default".
        with pytest.raises(InvalidTask, match="Queue 'anything' is not valid"):
            default_task_backend.enqueue(ft.always_fails, [], {})
        assert row_count() == before

    def test_backend_with_empty_queues_accepts_any_queue(self):
        result = ft.always_fails.using(queue_name="any-name-at-all").enqueue()
        assert TaskQueue.objects.get(pk=int(result.id)).queue == "any-name-at-all"

    def test_queue_name_longer_than_the_column_is_rejected(self):
        with pytest.raises(InvalidTask, match="at most 100 characters"):
            ft.always_fails.using(queue_name="q" * 101)

    @pytest.mark.parametrize("priority", [101, -101, 1.5])
    def test_priority_out_of_range_is_rejected(self, priority):
        with pytest.raises(InvalidTask, match="priority"):
            ft.add.using(priority=priority)

    @override_settings(USE_TZ=True)
    def test_naive_run_after_is_rejected_with_use_tz(self):
        with pytest.raises(InvalidTask, match="aware"):
            ft.add.using(run_after=timezone.now().replace(tzinfo=None))

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"retries": -1}, "retries must be >= 0"),
            ({"ttl": "long"}, "ttl must be a number"),
            ({"backoff": 0.5}, "backoff must be >= 1.0"),
            ({"timeout": 0}, "timeout must be > 0"),
        ],
    )
    def test_bad_autotask_options_are_rejected(self, options, message):
        with pytest.raises(InvalidTask, match=message):
            ft.add.using(**options)

    def test_task_options_reach_the_row(self):
        result = ft.add.using(retries=4, ttl=60, timeout=5, retry_delay=0.5).enqueue(1, 2)
        row = TaskQueue.objects.get(pk=int(result.id))
        assert (row.max_attempts, row.ttl) == (5, 60)
        assert row.options == {"timeout": 5, "retry_delay": 0.5, "backend": "default"}

    def test_backend_options_are_defaults_and_task_options_win(self):
        row = TaskQueue.objects.get(pk=int(ft.always_fails.enqueue().id))
        assert (row.max_attempts, row.ttl, row.options["retry_delay"]) == (2, 600, 0.01)
        row = TaskQueue.objects.get(pk=int(ft.always_fails.using(retries=0, ttl=5).enqueue().id))
        assert (row.max_attempts, row.ttl) == (1, 5)

    def test_failed_ttl_from_the_task_or_the_backend_options(self):
        row = TaskQueue.objects.get(pk=int(ft.add.using(failed_ttl=None).enqueue(1, 2).id))
        assert row.options == {"failed_ttl": None, "backend": "default"}  # kept until deleted
        row = TaskQueue.objects.get(pk=int(ft.add.enqueue(1, 2).id))
        assert "failed_ttl" not in row.options  # AUTOTASK_FAILED_TTL applies
        with override_settings(
            TASKS={"default": {"BACKEND": "autotask.backend.AutotaskBackend", "OPTIONS": {"failed_ttl": 60}}}
        ):
            row = TaskQueue.objects.get(pk=int(ft.add.enqueue(1, 2).id))
            assert row.options["failed_ttl"] == 60
        with pytest.raises(InvalidTask, match="failed_ttl must be >= 0"):
            ft.add.using(failed_ttl=-1)

    def test_decorator_forwards_autotask_options(self):
        assert (ft.fail_until.retries, ft.fail_until.retry_delay, ft.fail_until.backoff) == (2, 0.01, 1.0)
        with pytest.raises(InvalidTask, match="retries must be >= 0"):
            ft.task(ft._plain, retries=-1)

    def test_task_not_found_by_its_module_path_is_rejected(self):
        before = row_count()
        with pytest.raises(InvalidTask, match="does not name this task"):
            ft.renamed.enqueue(1)
        assert row_count() == before

    def test_takes_context_needs_a_context_argument(self):
        with pytest.raises(InvalidTask, match="context"):
            ft.task(ft._plain, takes_context=True)


@pytest.mark.django_db
class TestJsonRules:
    def test_arguments_follow_the_frameworks_json_rules(self):
        result = ft.echo.enqueue((1, 2), {"a": (3,), 4: None}, text=b"bytes", flag=True, none=None)
        assert result.args == [[1, 2], {"a": [3], "4": None}]
        assert result.kwargs == {"text": "bytes", "flag": True, "none": None}
        assert ft.echo.get_result(result.id).args == result.args

    @pytest.mark.parametrize("value", [object(), timezone.now(), {1, 2}, {(1, 2): "tuple key"}])
    def test_unsupported_argument_raises_type_error_and_stores_nothing(self, value):
        before = row_count()
        with pytest.raises(TypeError, match="JSON"):
            ft.echo.enqueue(value)
        with pytest.raises(TypeError, match="kwargs must be JSON"):
            ft.echo.enqueue(key=value)
        assert row_count() == before

    def test_undecodable_bytes_raise_value_error(self):
        with pytest.raises(ValueError, match="JSON"):
            ft.echo.enqueue(b"\xff")


@pytest.mark.django_db
class TestUnknownIds:
    @pytest.mark.parametrize(
        "result_id", ["999999999", "abc", "", "-1", "1.5", "99999999999999999999999", "١٢"]
    )
    def test_unknown_ids_raise_does_not_exist(self, result_id):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)
        with pytest.raises(TaskResultDoesNotExist):
            run_async(default_task_backend.aget_result(result_id))

    def test_an_autotask_decorator_row_is_not_a_framework_result(self):
        handle = autotask_tasks.add(1, 2)
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(str(handle.pk))

    def test_another_tasks_result_is_a_mismatch(self):
        result = ft.add.enqueue(1, 2)
        with pytest.raises(TaskResultMismatch):
            ft.echo.get_result(result.id)

    def test_pruned_row_no_longer_exists(self):
        result = ft.add.enqueue(1, 2)
        TaskQueue.objects.filter(pk=int(result.id)).delete()
        with pytest.raises(TaskResultDoesNotExist):
            result.refresh()

    def test_cancelled_task_reads_failed(self):
        result = ft.add.enqueue(1, 2)
        assert DelayedTask(int(result.id)).cancel()
        result.refresh()
        assert result.status == FAILED and result.errors == [] and result.finished_at is not None
        assert TaskQueue.objects.get(pk=int(result.id)).status == CANCELLED


@pytest.mark.django_db
class TestChecks:
    def test_a_good_configuration_passes(self):
        assert list(default_task_backend.check()) == []
        assert [m for m in run_checks() if m.id and m.id.startswith("autotask.E1")] == []

    def test_autotask_missing_from_installed_apps(self):
        with modify_settings(INSTALLED_APPS={"remove": ["autotask"]}):
            messages = list(default_task_backend.check())
        assert [m.id for m in messages] == ["autotask.E101"]
        assert "INSTALLED_APPS" in messages[0].msg

    def test_unknown_database_alias(self):
        backend = AutotaskBackend("x", {"OPTIONS": {"database": "nope"}})
        assert [m.id for m in backend.check()] == ["autotask.E102"]

    def test_unsupported_database(self, monkeypatch):
        monkeypatch.setattr(connection, "vendor", "oracle")
        messages = list(AutotaskBackend("x", {}).check())
        assert [m.id for m in messages] == ["autotask.E103"]
        assert "oracle" in messages[0].msg

    def test_misconfigured_backend_is_reported_by_manage_py_check(self):
        tasks = {"default": {"BACKEND": "autotask.backend.AutotaskBackend", "OPTIONS": {"database": "nope"}}}
        with override_settings(TASKS=tasks):
            assert "autotask.E102" in [m.id for m in run_checks()]

    def test_invalid_queue_names(self):
        messages = list(AutotaskBackend("x", {"QUEUES": ["ok", "q" * 101]}).check())
        assert [m.id for m in messages] == ["autotask.E104"]

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"retrys": 1}, "unknown key"),
            ({"retries": -1}, "retries must be >= 0"),
            ({"ttl": None, "database": 3}, "database"),
            ("retries=1", "must be a dict"),
        ],
    )
    def test_bad_options_fail_when_the_backend_is_built(self, options, message):
        with pytest.raises(InvalidTaskBackend, match=message):
            AutotaskBackend("x", {"OPTIONS": options})
        with (
            override_settings(
                TASKS={"bad": {"BACKEND": "autotask.backend.AutotaskBackend", "OPTIONS": options}}
            ),
            pytest.raises(InvalidTaskBackend, match=message),
        ):
            task_backends["bad"]

    def test_framework_missing_is_reported(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "autotask.backend", None)  # makes the import fail
        messages = autotask_checks.check_task_backend()
        assert [m.id for m in messages] == ["autotask.E100"]
        assert "pip install autotask[django-tasks]" in messages[0].hint
        with override_settings(
            TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
        ):
            assert autotask_checks.check_task_backend() == []


# -- with real worker processes ----------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestWorker:
    def test_aenqueue_and_aget_result(self):
        # Async calls run the ORM in another thread: this test commits for real.
        async def flow():
            result = await ft.add.aenqueue(4, 4)
            return (
                result,
                await ft.add.aget_result(result.id),
                await default_task_backend.aget_result(result.id),
            )

        result, fetched, via_backend = run_async(flow())
        assert fetched.id == via_backend.id == result.id
        assert fetched.status == READY and fetched.args == [4, 4]

    def test_success_with_every_field_filled(self, worker_process):
        worker_process()
        result = ft.add.enqueue(2, 3)
        done = finished(ft.add, result.id)
        row = TaskQueue.objects.get(pk=int(result.id))
        assert done.status == SUCCESSFUL
        assert done.return_value == 5
        assert done.errors == []
        assert done.worker_ids == [row.worker_id] and row.worker_id
        assert done.attempts == 1
        assert done.enqueued_at <= done.started_at == done.last_attempted_at <= done.finished_at
        assert (done.args, done.kwargs) == ([2, 3], {})
        result.refresh()  # the framework's refresh goes through get_result
        assert result.status == SUCCESSFUL and result.return_value == 5

    def test_failure_records_the_exception_and_traceback(self, worker_process):
        worker_process()
        result = ft.boom.enqueue("it broke")
        done = finished(ft.boom, result.id)
        assert done.status == FAILED
        assert len(done.errors) == 1 and len(done.worker_ids) == 1
        error = done.errors[0]
        assert error.exception_class_path == "builtins.ValueError"
        assert error.exception_class is ValueError
        assert "ValueError: it broke" in error.traceback
        assert done.finished_at is not None
        with pytest.raises(ValueError, match="Task failed"):
            _ = done.return_value

    def test_retries_with_context_attempts_and_one_error_per_failed_attempt(self, worker_process):
        worker_process()
        result = ft.fail_until.enqueue(3)
        done = finished(ft.fail_until, result.id)
        assert done.status == SUCCESSFUL
        assert done.return_value == 3
        assert [e.exception_class_path for e in done.errors] == ["builtins.RuntimeError"] * 2
        assert "attempt 1 failed" in done.errors[0].traceback
        assert len(done.worker_ids) == 3 == done.attempts
        assert done.started_at < done.last_attempted_at

    def test_backend_options_give_retries(self, worker_process):
        worker_process()
        result = ft.always_fails.enqueue()
        done = finished(ft.always_fails, result.id)
        assert done.status == FAILED
        assert [e.exception_class_path for e in done.errors] == ["builtins.KeyError"] * 2

    def test_context_carries_the_running_result(self, worker_process):
        worker_process()
        result = ft.whoami.enqueue("me")
        done = finished(ft.whoami, result.id)
        assert done.return_value == {
            "tag": "me",
            "attempt": 1,
            "id": result.id,
            "status": "RUNNING",
            "args": ["me"],
            "worker_ids": done.worker_ids,
            "enqueued_at": done.enqueued_at.isoformat(),
        }

    def test_async_task(self, worker_process):
        worker_process()
        result = ft.async_add.enqueue(20, 22)
        assert finished(ft.async_add, result.id).return_value == 42

    def test_json_round_trip_through_the_worker(self, worker_process):
        worker_process()
        result = ft.echo.enqueue((1, "two"), {"k": [3.5, None, True]}, n={7: "seven"})
        done = finished(ft.echo, result.id)
        assert done.return_value == {
            "args": [[1, "two"], {"k": [3.5, None, True]}],
            "kwargs": {"n": {"7": "seven"}},
        }

    def test_unstorable_return_value_fails_without_retry(self, worker_process):
        worker_process()
        result = ft.unstorable_result.using(retries=3).enqueue()
        done = finished(ft.unstorable_result, result.id)
        assert done.status == FAILED
        assert len(done.errors) == 1
        assert issubclass(done.errors[0].exception_class, TypeError)
        assert "Unsupported type" in done.errors[0].traceback

    def test_priority_orders_the_runs(self, worker_process):
        low = [ft.record_low.enqueue(f"prio-low{i}") for i in range(3)]
        high = [ft.record.using(priority=100).enqueue(f"prio-high{i}") for i in range(3)]
        mid = [ft.record.enqueue(f"prio-mid{i}") for i in range(2)]
        worker_process()
        for result in [*low, *high, *mid]:
            finished(default_task_backend, result.id)
        assert records("prio-") == [
            *(f"prio-high{i}" for i in range(3)),
            *(f"prio-mid{i}" for i in range(2)),
            *(f"prio-low{i}" for i in range(3)),
        ]

    def test_run_after_defers_the_run(self, worker_process):
        worker_process()
        finished(ft.add, ft.add.enqueue(1, 1).id)  # the worker is serving
        when = timezone.now() + timedelta(seconds=1)
        later = ft.record.using(run_after=when).enqueue("deferred")
        done = finished(ft.record, later.id)
        assert done.status == SUCCESSFUL
        assert done.started_at >= when
        assert done.task.run_after == when

    def test_signals_carry_the_backend_class_and_the_result(self, worker_process):
        enqueued = []

        def on_enqueued(sender, task_result, **kwargs):
            enqueued.append((sender, task_result.id, task_result.status))

        task_enqueued.connect(on_enqueued)
        try:
            good = ft.signalled.enqueue()
            bad = ft.signalled.enqueue(fail=True)
        finally:
            task_enqueued.disconnect(on_enqueued)
        assert enqueued == [(AutotaskBackend, good.id, READY), (AutotaskBackend, bad.id, READY)]
        worker_process()
        finished(ft.signalled, good.id)
        finished(ft.signalled, bad.id)
        # The worker's receivers (tests/app/framework_tasks.py) wrote what they were sent.
        assert set(records("started:")) == {
            f"started:{good.id}:RUNNING:AutotaskBackend:1",
            f"started:{bad.id}:RUNNING:AutotaskBackend:1",
        }
        assert set(records("finished:")) == {
            f"finished:{good.id}:SUCCESSFUL:AutotaskBackend:ok",
            f"finished:{bad.id}:FAILED:AutotaskBackend:1",
        }


# -- periodic and cron framework tasks ---------------------------------------

SCHEDULED = "tests.app.framework_scheduled"


@pytest.fixture
def declared_schedules():
    """Declare tests.app.framework_scheduled's schedules in this process, for this test only."""
    from tests.app import framework_scheduled

    saved = dict(scheduler._schedules), set(scheduler._synced)
    for name in ("every_second", "weekday_mornings", "hourly"):
        # A no-op if imported just now.
        framework.schedules._register_schedule(getattr(framework_scheduled, name))
    yield scheduler.registered()
    scheduler._schedules.clear()
    scheduler._schedules.update(saved[0])
    scheduler._synced.clear()
    scheduler._synced.update(saved[1])


@pytest.mark.django_db
class TestScheduleDeclarations:
    def test_schedules_are_handed_to_the_scheduler(self, declared_schedules):
        specs = declared_schedules
        every = specs[f"{SCHEDULED}.every_second"]
        assert (every.kind, every.seconds, every.start_now, every.options.ttl) == ("periodic", 1.0, True, 600)
        cron = specs[f"{SCHEDULED}.weekday_mornings"]
        assert (cron.kind, cron.spec, cron.timezone) == ("cron", "0 4 * * 1-5", "Europe/Paris")
        assert (cron.options.priority, cron.options.queue) == (5, "other")
        hourly = specs[f"{SCHEDULED}.hourly"]
        assert (hourly.options.retries, hourly.options.ttl, hourly.options.retry_delay) == (1, 600, 0.01)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"periodic": 0}, "seconds must be a positive number"),
            ({"cron": "61 * * * *"}, "minute"),
            ({"cron": "* * * * *", "periodic": 5}, "not both"),
            ({"timezone": "Europe/Paris"}, "need a schedule"),
            ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
            ({"periodic": 5, "start_now": True, "timezone": "UTC"}, "cron= schedules only"),
        ],
    )
    def test_bad_schedules_are_rejected_at_declaration(self, options, message):
        with pytest.raises(InvalidTask, match=message):
            ft.task(ft.signalled.func, **options)  # each fails, so nothing is registered

    def test_a_scheduled_task_must_run_without_arguments(self):
        with pytest.raises(InvalidTask, match="runs without arguments"):
            ft.task(ft._plain, periodic=60)


@pytest.mark.django_db(transaction=True)
class TestScheduledRuns:
    def test_periodic_framework_task_runs_with_context_and_results(self, worker_process):
        worker_process(env={"AUTOTASK_TEST_SCHEDULES": SCHEDULED})
        name = f"{SCHEDULED}.every_second"
        wait_for(lambda: TaskQueue.objects.filter(function=name, status=DONE).count() >= 2, timeout=30)
        row = TaskQueue.objects.filter(function=name, status=DONE).order_by("id").first()
        result = default_task_backend.get_result(str(row.id))
        assert result.status == SUCCESSFUL and result.return_value == 1
        assert result.task.func.__name__ == "every_second"
        assert row.kind == "periodic" and row.ttl == 600
        assert f"fw_every_second:{row.id}" in records("fw_every_second:")
        assert not Schedule.objects.get(name=name).missing

    def test_a_worker_that_never_imported_the_task_still_runs_its_schedule(
        self, worker_process, declared_schedules
    ):
        scheduling.sync()  # this process writes the schedules, as a web process's worker would
        worker_process()  # imports nothing up front: the stored schedule names the module
        name = f"{SCHEDULED}.every_second"
        wait_for(lambda: TaskQueue.objects.filter(function=name, status=DONE).exists(), timeout=30)
        assert not Schedule.objects.get(name=name).missing
