"""Progress, metadata and workflows where users look: the handle, the admin, autotask_status --json."""

import io
import json
import math

import pytest
from django.core.management import call_command
from django.urls import reverse

import autotask
from autotask import chain, group, testing
from autotask.context import CurrentTask, reports
from autotask.enqueue.handle import DelayedTask
from autotask.models import TaskQueue, Workflow
from autotask.task import CANCELLED, DONE, RUNNING
from autotask.tasks import delayed_task
from tests.app import workflow_tasks as wt

pytestmark = pytest.mark.django_db

CALLS = 100_000


def mine(ran):
    """The runs of this module's tasks (schedules other modules declared may run too)."""
    return [
        r
        for r in ran
        if r.name.startswith(
            ("tests.ops.test_progress", "tests.app.workflow_tasks", "tests.app.framework_progress")
        )
    ]


@delayed_task()
def counts(n):
    task = autotask.current_task()
    for done in range(n):
        task.set_progress(done + 1, n, "counting")
    task.set_metadata({"rows": n}, source="test")
    return n


@delayed_task()
async def counts_async(n):
    task = autotask.current_task()
    for done in range(n):
        task.set_progress(done + 1, n, "async")
    task.set_metadata(kind="async")
    return n


@delayed_task()
def bad_progress(done, total, message):
    autotask.current_task().set_progress(done, total, message)


@delayed_task()
def bad_metadata(kind):
    values = {"set": {1, 2}} if kind == "value" else {1: "x"}
    autotask.current_task().set_metadata(values)


def test_progress_and_metadata_are_stored_with_the_outcome_and_read_by_the_handle():
    handle = counts(CALLS)
    assert handle.progress is None
    assert handle.metadata == {}
    (ran,) = mine(testing.run_due())
    assert ran.status == DONE
    progress = handle.progress
    assert (progress["done"], progress["total"], progress["message"]) == (CALLS, CALLS, "counting")
    assert handle.metadata == {"rows": CALLS, "source": "test"}


@pytest.fixture
def consumer():
    reports.consume("unit-test")
    yield
    reports.release("unit-test")


def test_an_async_task_reports_progress_too():
    handle = counts_async(50)
    (ran,) = mine(testing.run_due())
    assert ran.status == DONE
    assert (handle.progress["done"], handle.progress["message"]) == (50, "async")
    assert handle.metadata == {"kind": "async"}


def test_many_calls_keep_one_pending_report_with_the_latest_value(consumer):
    current = CurrentTask(id=-7, name="x", attempt=1, max_attempts=1, queue="q", worker_id="unit-test")
    for done in range(1000):
        current.set_progress(done, 1000)
    assert list(reports.changed).count(-7) == 1
    taken = reports.take("unit-test")
    assert taken[-7][0]["done"] == 999
    assert reports.take("unit-test") == {}  # nothing changed since
    current.set_progress(1000, 1000, "done")
    assert reports.take("unit-test")[-7][0]["message"] == "done"


@pytest.mark.parametrize(
    ("done", "total", "message", "error"),
    [
        ("1", None, "", TypeError),
        (True, None, "", TypeError),
        (1, "10", "", TypeError),
        (-1, None, "", ValueError),
        (1, -5, "", ValueError),
        (math.nan, None, "", ValueError),
        (1, math.inf, "", ValueError),
        (1, 10, None, TypeError),
    ],
)
def test_bad_progress_raises_in_the_task_and_stores_nothing(done, total, message, error, consumer):
    current = CurrentTask(id=-8, name="x", attempt=1, max_attempts=1, queue="q", worker_id="unit-test")
    with pytest.raises(error):
        current.set_progress(done, total, message)
    assert current.progress is None
    handle = bad_progress(done, total, message)
    (ran,) = mine(testing.run_due())
    assert error.__name__ in ran.traceback
    assert handle.progress is None


def test_reports_no_worker_writes_are_dropped_with_a_warning(caplog):
    current = CurrentTask(id=-10, name="x", attempt=1, max_attempts=1, queue="q", worker_id="nobody")
    with caplog.at_level("WARNING", logger="autotask"):
        current.set_progress(1, 2)
        current.set_progress(2, 2)
    assert -10 not in reports.changed
    assert [r.message for r in caplog.records if "no worker in this process" in r.message] == [
        "task x #-10 reported progress or metadata, but no worker in this process writes the reports "
        "of worker 'nobody': they are not stored"
    ]


def test_floats_and_int_subclasses_are_progress(consumer):
    current = CurrentTask(id=-9, name="x", attempt=1, max_attempts=1, queue="q", worker_id="unit-test")
    current.set_progress(0.5, 1.0)
    assert current.progress["done"] == 0.5
    reports.take("unit-test")


@pytest.mark.parametrize("kind", ["value", "key"])
def test_metadata_that_is_not_json_raises_in_the_task(kind):
    handle = bad_metadata(kind)
    (ran,) = mine(testing.run_due())
    assert "TypeError" in ran.traceback
    assert handle.metadata == {}


def test_admin_shows_progress_on_the_list_and_the_task_page(admin_client):
    handle = counts(10)
    testing.run_due()
    html = admin_client.get(reverse("admin:autotask_taskqueue_changelist")).content.decode()
    assert '<progress class="autotask-progress" max="10" value="10">100%</progress>' in html
    page = admin_client.get(reverse("admin:autotask_taskqueue_change", args=[handle.pk])).content.decode()
    assert "autotask-progress" in page
    assert "&quot;rows&quot;: 10" in page or '"rows": 10' in page


def test_admin_shows_a_workflows_steps_together(admin_client):
    squares = group(wt.square.step(2), wt.square.step(3))
    handle = chain(wt.start.step(1), squares, wt.total.step("cb")).enqueue()
    first = handle.steps[0][0].task
    page = admin_client.get(reverse("admin:autotask_workflow_change", args=[handle.pk])).content.decode()
    assert f"#{first.pk}" in page
    assert page.count("tests.app.workflow_tasks.square") == 2 and "pending" in page
    task_page = admin_client.get(reverse("admin:autotask_taskqueue_change", args=[first.pk])).content.decode()
    assert f"?workflow__id__exact={handle.pk}" in task_page
    other = wt.start(5)
    steps = admin_client.get(
        reverse("admin:autotask_taskqueue_changelist") + f"?workflow__id__exact={handle.pk}"
    )
    assert steps.status_code == 200
    listed = steps.content.decode()
    assert f"/{first.pk}/change/" in listed and f"/{other.pk}/change/" not in listed
    listing = admin_client.get(reverse("admin:autotask_workflow_changelist")).content.decode()
    assert "1 / 3" in listing


def test_admin_cancels_a_workflow(admin_client):
    handle = group(wt.square.step(2), wt.square.step(3)).then(wt.total.step("cb")).enqueue()
    response = admin_client.post(
        reverse("admin:autotask_workflow_changelist"),
        {"action": "cancel_workflows", "_selected_action": [handle.pk]},
    )
    assert response.status_code == 302
    assert handle.status == CANCELLED
    assert set(TaskQueue.objects.values_list("status", flat=True)) == {CANCELLED}


def test_status_json_shows_running_progress_and_workflows():
    group(wt.square.step(2), wt.square.step(3)).enqueue()
    task = TaskQueue.objects.filter(workflow__isnull=False).first()
    progress = {"done": 1, "total": 2, "message": ""}
    TaskQueue.objects.filter(pk=task.pk).update(status=RUNNING, progress=progress)
    out = io.StringIO()
    with pytest.raises(SystemExit):  # no worker: unhealthy, but the JSON is printed
        call_command("autotask_status", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["workflows"]["running"] == 1
    (running,) = data["running_progress"]
    assert (running["id"], running["progress"]["done"], running["workflow_id"]) == (
        task.pk,
        1,
        Workflow.objects.get().pk,
    )


def test_a_framework_task_reports_progress_read_through_its_result():
    fp = pytest.importorskip("tests.app.framework_progress")
    result = fp.counts.enqueue(20)
    (ran,) = mine(testing.run_due())
    assert ran.status == DONE
    handle = DelayedTask(int(result.id))
    assert (handle.progress["done"], handle.metadata) == (20, {"kind": "framework"})
    fresh = fp.counts.get_result(result.id)
    if hasattr(fresh, "__dict__"):  # a TaskResult class that takes attributes of its own
        assert fresh.progress["done"] == 20


@pytest.mark.parametrize("task", ["limited", "rated"])
def test_a_limited_task_is_refused_as_a_workflow_step_and_nothing_is_stored(task):
    from tests.app import limited_tasks

    declared = getattr(limited_tasks, task)
    with pytest.raises(ValueError, match="concurrency or rate limit: it cannot be a workflow step"):
        chain(wt.start.step(1), declared.step("g", 1))
    assert not Workflow.objects.exists() and not TaskQueue.objects.exists()
