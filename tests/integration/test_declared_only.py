"""Only declared tasks run: forged rows naming anything else are refused by real workers."""

import pytest

from autotask import serialization, testing
from autotask.models import TaskQueue
from autotask.task import DONE, ERROR, WAITING
from tests.conftest import records, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = "is not a declared task"


def forge(function, *args, max_attempts=3):
    """Insert a task row by hand, as anyone with write access to the table could."""
    return TaskQueue.objects.create(
        function=function, args=serialization.encode_call(args, {}), max_attempts=max_attempts
    ).pk


def forged_rows(tmp_path):
    """{pk: marker file or record key that appears if the row ran} for each kind of target."""
    marks = {name: tmp_path / name for name in ("system", "getoutput", "exec", "class")}
    rows = {
        # a stdlib function running a shell command
        forge("os.system", f"touch {marks['system']}"): marks["system"],
        forge("subprocess.getoutput", f"touch {marks['getoutput']}"): marks["getoutput"],
        # a builtin
        forge("builtins.exec", f"open({str(marks['exec'])!r}, 'w').close()"): marks["exec"],
        # a class whose constructor creates the file
        forge("logging.FileHandler", str(marks["class"])): marks["class"],
        # an undecorated function of the project: it would insert a Record row
        forge("tests.app.tasks.insert_record", "forged-undecorated"): "forged-undecorated",
    }
    return rows


def wait_finished(ids):
    assert wait_for(
        lambda: TaskQueue.objects.filter(pk__in=ids, status__in=(DONE, ERROR)).count() == len(ids),
        timeout=30,
        message="every row to finish",
    )


def assert_refused(rows):
    for pk, mark in rows.items():
        row = TaskQueue.objects.get(pk=pk)
        assert row.status == ERROR, (row.function, row.status, row.error_message)
        assert REFUSED in row.error_message and "@delayed_task" in row.error_message, row.error_message
        assert row.attempts == 1, row.function  # no retry, though max_attempts allowed 3
        assert row.result is None
        if isinstance(mark, str):
            assert records(mark) == [], f"{row.function} ran"
        else:
            assert not mark.exists(), f"{row.function} ran"


def test_worker_refuses_forged_rows(worker_process, tmp_path):
    rows = forged_rows(tmp_path)
    control = forge("tests.app.tasks.record", "declared")  # a declared task, forged the same way
    worker_process()
    ids = [*rows, control]
    wait_finished(ids)
    assert TaskQueue.objects.get(pk=control).status == DONE
    assert records("declared") == ["declared"]
    assert_refused(rows)
    history = TaskQueue.objects.get(pk=next(iter(rows))).history
    assert history[-1]["exception"] == "autotask.exceptions.NotADeclaredTask"


def test_run_due_refuses_forged_rows(tmp_path):
    rows = forged_rows(tmp_path)
    # (Schedules other test modules declared may run too.)
    ran = [r for r in testing.run_due() if r.pk in rows]
    assert {r.pk for r in ran} == set(rows)
    assert all(r.status == ERROR and REFUSED in r.error for r in ran)
    assert_refused(rows)


def test_admin_retry_leaves_undeclared_rows_alone(tmp_path):
    from autotask import monitor

    rows = forged_rows(tmp_path)
    testing.run_due()
    declared = forge("tests.app.tasks.boom", max_attempts=1)
    testing.run_due()
    assert monitor.retry_failed(TaskQueue.objects.all()) == 1
    assert TaskQueue.objects.get(pk=declared).status == WAITING
    assert set(TaskQueue.objects.filter(status=ERROR).values_list("pk", flat=True)) == set(rows)


def test_a_worker_on_an_inactive_site_runs_declared_tasks_only(worker_process, tmp_path):
    """AUTOTASK_IS_ACTIVE = False: the decorators return the function, yet still declare it."""
    rows = forged_rows(tmp_path)
    control = forge("tests.app.tasks.record", "inactive")
    worker_process(env={"AUTOTASK_TEST_IS_ACTIVE": "0"})
    ids = [*rows, control]
    wait_finished(ids)
    assert TaskQueue.objects.get(pk=control).status == DONE
    assert records("inactive") == ["inactive"]
    assert_refused(rows)


def test_framework_rows_name_framework_tasks_only(worker_process):
    ft = pytest.importorskip("tests.app.framework_tasks")
    declared = ft.record.enqueue("framework")
    forged = ft.record.enqueue("forged-framework")
    # Someone rewrites the row to name the undecorated function the task calls.
    TaskQueue.objects.filter(pk=int(forged.id)).update(function="tests.app.tasks.insert_record")
    worker_process()
    ids = [int(declared.id), int(forged.id)]
    wait_finished(ids)
    assert TaskQueue.objects.get(pk=int(declared.id)).status == DONE
    assert_refused({int(forged.id): "forged-framework"})
