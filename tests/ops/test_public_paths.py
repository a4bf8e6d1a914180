"""Every import path users and Django name stays where it was, whatever the package's layout."""

import importlib

import pytest

STATUSES = ["WAITING", "RUNNING", "DONE", "ERROR", "CANCELLED"]

PUBLIC = {
    "autotask.tasks": [
        "delayed_task",
        "periodic_task",
        "cron_task",
        "DelayedTask",
        "Task",
        "Call",
        *STATUSES,
    ],
    "autotask.task": [*STATUSES, "STATUS_NAMES", "FINISHED"],
    "autotask.models": ["TaskQueue", "Schedule", "Worker", *STATUSES, "KIND_FRAMEWORK"],
    "autotask.cron": ["CronExpression", "CronScheduler", "next_run", "resolve_timezone"],
    "autotask.testing": ["run_due", "enqueued", "eager", "Ran", "TaskFailed", *STATUSES],
    "autotask.admin": ["TaskQueueAdmin", "ScheduleAdmin", "WorkerAdmin"],
    "autotask.apps": ["AutotaskConfig"],
    "autotask.signals": ["task_enqueued", "task_started", "task_finished"],
    "autotask.exceptions": [
        "AutotaskError",
        "InvalidTaskOptions",
        "SerializationError",
        "TaskFunctionNotFound",
    ],
    "autotask.worker": ["Worker", "run_worker"],
    "autotask.db": ["get_ops"],
    "autotask.management.commands.run_autotask": ["Command"],
    "autotask.management.commands.autotask_status": ["Command"],
    "autotask.management.commands.autotask_clean": ["Command"],
    "autotask.migrations.0001_initial": ["Migration"],
    "autotask.migrations.0002_claim_indexes": ["Migration"],
    "autotask.migrations.0003_schedule_runs_index": ["Migration"],
}


@pytest.mark.parametrize(("path", "names"), PUBLIC.items(), ids=list(PUBLIC))
def test_public_path_still_imports(path, names):
    module = importlib.import_module(path)
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{path} lost {missing}"


def test_the_tasks_framework_backend_keeps_its_path():
    backend = pytest.importorskip("autotask.backend", reason="no tasks framework installed")
    assert backend.AutotaskBackend.task_class is backend.AutotaskTask


def test_the_handle_is_one_class_under_both_names():
    from autotask.enqueue.handle import DelayedTask
    from autotask.tasks import DelayedTask as public

    assert public is DelayedTask
