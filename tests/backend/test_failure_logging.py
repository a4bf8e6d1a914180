"""A task's final failure is one ERROR record with its exception, whoever enqueued it."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

pytest.importorskip("autotask.backend", reason="no tasks framework installed")

from autotask import testing
from tests.app import framework_tasks as ft
from tests.app import tasks as plain

pytestmark = pytest.mark.django_db(transaction=True)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level, task_id=None):
        """Records at ``level`` (about the task ``task_id`` only, when given)."""
        return [r for r in self.records if r.levelno == level and (task_id is None or about(r, task_id))]


def about(record, task_id):
    """Whether ``record`` is about the task ``task_id`` (other tests' schedules may run too)."""
    return getattr(record, "task_id", None) == task_id or f"id={task_id} " in record.getMessage()


def of(ran, name):
    """The attempts of ``name`` among ``ran`` (other tests' schedules may be due too)."""
    return [r for r in ran if r.name == name]


@pytest.fixture
def root_records():
    """Every record that reaches the root logger (where error trackers hook in)."""
    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def test_a_failing_framework_task_logs_one_error_with_its_exception(root_records):
    ft.boom.enqueue("it broke")
    ran = of(testing.run_due(), "tests.app.framework_tasks.boom")
    assert [r.status for r in ran] == [testing.ERROR]
    errors = root_records.at(logging.ERROR, ran[0].pk)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    (error,) = errors
    assert error.name == "autotask"
    assert error.exc_info and isinstance(error.exc_info[1], ValueError)
    assert error.task_id == ran[0].pk
    # The framework's own line stays, below ERROR and without the exception.
    framework = [
        r for r in root_records.records if r.name in ("django.tasks", "django_tasks") and about(r, ran[0].pk)
    ]
    failed = [r for r in framework if "FAILED" in r.getMessage()]
    assert failed and all(r.levelno == logging.INFO and not r.exc_info for r in failed)


def test_a_retried_framework_task_warns_per_retry_and_errors_once(root_records):
    ft.always_fails.enqueue()
    ran = testing.run_due()
    ran += testing.run_due(now=timezone.now() + timedelta(seconds=5))
    ran = of(ran, "tests.app.framework_tasks.always_fails")
    assert [r.status for r in ran] == [testing.WAITING, testing.ERROR]
    warnings = root_records.at(logging.WARNING, ran[0].pk)
    assert len(warnings) == 1 and "retrying" in warnings[0].getMessage()
    errors = root_records.at(logging.ERROR, ran[0].pk)
    assert len(errors) == 1 and errors[0].exc_info and isinstance(errors[0].exc_info[1], KeyError)


def test_a_failing_plain_task_logs_one_error_with_its_exception(root_records):
    plain.boom()
    ran = of(testing.run_due(), "tests.app.tasks.boom")
    assert [r.status for r in ran] == [testing.ERROR]
    errors = root_records.at(logging.ERROR, ran[0].pk)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].exc_info and isinstance(errors[0].exc_info[1], ValueError)


def test_other_framework_errors_are_left_alone(root_records):
    from autotask.backend.run import framework_logger

    framework_logger.error("something else broke")
    assert [r.getMessage() for r in root_records.at(logging.ERROR)] == ["something else broke"]
