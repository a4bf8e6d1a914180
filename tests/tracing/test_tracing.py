"""OpenTelemetry tracing (AUTOTASK_TRACING), against the real SDK.

In this process the spans go to the SDK's InMemorySpanExporter; a worker
process started with tests/tracing/settings.py writes its spans to a file
(tests/tracing/spans.py), so the parent/child link is proven across processes.
"""

import os
import sys
from datetime import timedelta

import pytest

pytest.importorskip("opentelemetry.sdk.trace", reason="the tracing tests need opentelemetry-sdk")

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.test import override_settings
from django.utils import timezone

from autotask import testing, tracing
from autotask.checks import check_setting_values, check_tracing
from autotask.db import get_ops
from autotask.maintenance import scheduling
from autotask.models import Schedule, TaskQueue
from autotask.tasks import periodic_task
from tests.conftest import ROOT, wait_for
from tests.tracing import tasks
from tests.tracing.spans import as_dict, memory_exporter, read_file

WORKER_SETTINGS = "tests.tracing.settings"


class Traced:
    """The spans this process finished, as dicts (tests/tracing/spans.py: as_dict)."""

    def __init__(self, exporter):
        self.exporter = exporter

    def spans(self, kind=None):
        spans = [as_dict(span) for span in self.exporter.get_finished_spans()]
        return [span for span in spans if kind is None or span["kind"] == kind]

    def one(self, name):
        [span] = [span for span in self.spans() if span["name"] == name]
        return span


@pytest.fixture
def traced(isolated_schedules):
    # Only the schedules a test declares tick meanwhile: a run of another module's
    # periodic task would add spans of its own.
    exporter = memory_exporter()
    exporter.clear()
    with override_settings(AUTOTASK_TRACING=True):
        yield Traced(exporter)
    exporter.clear()


def _messaging(operation, function, **more):
    return {
        "messaging.system": "autotask",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": "default",
        "autotask.task.function": function,
        **more,
    }


def _child_of(span, parent):
    """True when ``span`` is a child of ``parent`` (same trace) and links to it."""
    return (
        span["parent_id"] == parent["span_id"]
        and span["trace_id"] == parent["trace_id"]
        and span["links"] == [parent["span_id"]]
    )


# -- in this process (autotask.testing) -------------------------------------


@pytest.mark.django_db
def test_a_run_is_a_child_of_its_enqueue_and_task_spans_nest_under_the_run(traced):
    handle = tasks.traced_add(2, 3)

    [send] = traced.spans()
    name = "tests.tracing.tasks.traced_add"
    assert (send["name"], send["kind"], send["parent_id"]) == (f"send {name}", "PRODUCER", None)
    assert send["attributes"] == _messaging("send", name, **{"messaging.message.id": str(handle.pk)})
    # The W3C trace context travels in the row's options.
    carrier = TaskQueue.objects.get(pk=handle.pk).options[tracing.CARRIER]
    assert list(carrier) == ["traceparent"]
    assert carrier["traceparent"].startswith(f"00-{send['trace_id']}-{send['span_id']}-")  # then the flags

    [ran] = testing.run_due()
    assert ran.status == testing.DONE and ran.result == 5
    process, inside = traced.one(f"process {name}"), traced.one("inside traced_add")
    assert process["kind"] == "CONSUMER" and _child_of(process, send)
    worker_id = process["attributes"].pop("messaging.client.id")
    assert worker_id.startswith("testing:")
    assert process["attributes"] == _messaging(
        "process",
        name,
        **{
            "messaging.message.id": str(handle.pk),
            "autotask.task.attempt": 1,
            "autotask.task.outcome": "done",
        },
    )
    assert process["status"] == "UNSET" and process["events"] == []
    assert inside["parent_id"] == process["span_id"] and inside["trace_id"] == send["trace_id"]


@pytest.mark.django_db
def test_the_enqueue_span_continues_the_callers_trace(traced):
    with tasks.tracer.start_as_current_span("request"):
        tasks.traced_add(1, 1)
    testing.run_due()

    request = traced.one("request")
    send = traced.one("send tests.tracing.tasks.traced_add")
    process = traced.one("process tests.tracing.tasks.traced_add")
    assert send["parent_id"] == request["span_id"]
    assert _child_of(process, send) and process["trace_id"] == request["trace_id"]


@pytest.mark.django_db
def test_a_failed_insert_is_an_error_span(traced, monkeypatch):
    def refuse(ops, rows, notify=True):
        raise DatabaseError("insert refused")

    monkeypatch.setattr(type(get_ops()), "insert_tasks", refuse)
    with pytest.raises(DatabaseError):
        tasks.traced_add(1, 2)
    [send] = traced.spans()
    assert (send["status"], send["events"][0]["exception.type"]) == ("ERROR", "django.db.utils.DatabaseError")


@pytest.mark.django_db
def test_eager_runs_are_children_of_their_enqueue(traced):
    with testing.eager():
        handle = tasks.traced_add(4, 4)
    assert handle.result == 8
    send = traced.one("send tests.tracing.tasks.traced_add")
    assert _child_of(traced.one("process tests.tracing.tasks.traced_add"), send)


@pytest.mark.django_db
def test_enqueue_many_is_one_send_span_with_the_count_and_each_run_its_child(traced):
    handles = tasks.traced_add.enqueue_many([(1, 1), (2, 2), (3, 3)])

    [send] = traced.spans()
    assert send["attributes"]["messaging.batch.message_count"] == 3
    assert "messaging.message.id" not in send["attributes"]

    assert len(testing.run_due()) == 3
    runs = traced.spans("CONSUMER")
    assert all(_child_of(run, send) for run in runs)
    assert sorted(run["attributes"]["messaging.message.id"] for run in runs) == sorted(
        str(handle.pk) for handle in handles
    )


@pytest.mark.django_db
def test_each_attempt_is_a_span_with_the_error_and_the_exception(traced):
    handle = tasks.traced_failure.using(retry_delay=60)()
    [first] = testing.run_due()
    [second] = testing.run_due(now=timezone.now() + timedelta(minutes=5))
    assert (first.status, second.status) == (testing.WAITING, testing.ERROR)

    send = traced.one("send tests.tracing.tasks.traced_failure")
    attempts = sorted(traced.spans("CONSUMER"), key=lambda span: span["attributes"]["autotask.task.attempt"])
    assert [span["attributes"]["autotask.task.attempt"] for span in attempts] == [1, 2]
    assert [span["attributes"]["autotask.task.outcome"] for span in attempts] == ["retry", "error"]
    for span in attempts:
        assert _child_of(span, send)
        assert span["attributes"]["messaging.message.id"] == str(handle.pk)
        assert span["attributes"]["error.type"] == "builtins.ValueError"
        assert (span["status"], span["description"]) == ("ERROR", "traced failure")
        [event] = span["events"]
        assert event["name"] == "exception"
        assert (event["exception.type"], event["exception.message"]) == ("ValueError", "traced failure")
        assert "raise ValueError" in event["exception.stacktrace"]


@pytest.mark.django_db
def test_an_async_task_runs_in_its_span(traced):
    tasks.traced_async("value")
    [ran] = testing.run_due()
    assert ran.result == "value"
    process = traced.one("process tests.tracing.tasks.traced_async")
    assert _child_of(process, traced.one("send tests.tracing.tasks.traced_async"))
    assert traced.one("inside traced_async")["parent_id"] == process["span_id"]


@pytest.mark.django_db
def test_a_task_enqueued_through_django_tasks_is_traced(traced):
    framework = pytest.importorskip("tests.app.framework_tasks", reason="no tasks framework")
    result = framework.add.enqueue(2, 2)
    [ran] = testing.run_due()
    assert ran.result == 4
    send = traced.one("send tests.app.framework_tasks.add")
    assert send["attributes"]["messaging.message.id"] == result.id
    process = traced.one("process tests.app.framework_tasks.add")
    assert _child_of(process, send) and process["attributes"]["autotask.task.outcome"] == "done"


@pytest.mark.django_db
def test_a_periodic_run_has_no_parent_and_no_send_span(traced, isolated_schedules):
    periodic_task(seconds=3600, start_now=True)(tasks.every_hour)
    [ran] = testing.run_due()
    assert ran.result == "ran"
    assert traced.spans("PRODUCER") == []
    process = traced.one("process tests.tracing.tasks.every_hour")
    assert process["parent_id"] is None and process["links"] == []
    assert traced.one("inside every_hour")["parent_id"] == process["span_id"]

    # "Run now" (the admin's action) is an enqueue by someone: it is sent, and its run is a child.
    traced.exporter.clear()
    pk = scheduling.run_now(Schedule.objects.get(name="tests.tracing.tasks.every_hour"))
    [send] = traced.spans("PRODUCER")
    assert send["attributes"]["messaging.message.id"] == str(pk)
    testing.run_due()
    assert _child_of(traced.one("process tests.tracing.tasks.every_hour"), send)


@pytest.mark.django_db
def test_tracing_off_makes_no_span_and_stores_no_context():
    exporter = memory_exporter()
    exporter.clear()
    handle = tasks.traced_add(1, 2)
    tasks.traced_add.enqueue_many([(3, 4)])
    testing.run_due()
    # Only the task's own span: autotask made none.
    assert [span.name for span in exporter.get_finished_spans()] == ["inside traced_add"] * 2
    assert tracing.CARRIER not in TaskQueue.objects.get(pk=handle.pk).options


# -- bad settings, a missing extra -------------------------------------------


@pytest.mark.django_db
@override_settings(AUTOTASK_TRACING="yes")
def test_a_tracing_setting_that_is_not_a_bool_is_refused():
    with pytest.raises(ImproperlyConfigured, match="AUTOTASK_TRACING must be True or False, not 'yes'"):
        tasks.traced_add(1, 2)
    assert [error.id for error in check_setting_values() if "TRACING" in error.msg] == ["autotask.E010"]
    assert check_tracing() == []  # not on: the type error above is the one reported


@pytest.fixture
def without_opentelemetry(monkeypatch):
    """Make OpenTelemetry unimportable, as it is without the extra."""
    for name in [name for name in sys.modules if name.split(".")[0] == "opentelemetry"]:
        monkeypatch.setitem(sys.modules, name, None)
    tracing._otel.cache_clear()
    yield
    monkeypatch.undo()
    tracing._otel.cache_clear()


@pytest.mark.django_db
def test_tracing_without_the_extra_is_a_check_error_and_stores_nothing(traced, without_opentelemetry):
    [error] = check_tracing()
    assert error.id == "autotask.E060" and "opentelemetry" in error.hint
    with pytest.raises(ImproperlyConfigured, match=r"autotask\[opentelemetry\]"):
        tasks.traced_add(1, 2)
    with pytest.raises(ImproperlyConfigured, match=r"autotask\[opentelemetry\]"):
        tasks.traced_add.enqueue_many([(1, 2)])
    assert not TaskQueue.objects.exists()


def test_tracing_with_the_extra_passes_the_check(traced):
    assert check_tracing() == []


# -- across processes: a real worker exports its spans to a file -------------


def test_worker_runs_are_children_of_the_enqueues_made_here(traced, worker_process, tmp_path):
    framework = pytest.importorskip("tests.app.framework_tasks", reason="no tasks framework")
    path = tmp_path / "worker-spans.jsonl"
    with tasks.tracer.start_as_current_span("request"):
        handles = {
            "tests.tracing.tasks.traced_add": tasks.traced_add(2, 3).pk,
            "tests.tracing.tasks.traced_async": tasks.traced_async("x").pk,
            "tests.tracing.tasks.traced_failure": tasks.traced_failure().pk,  # two attempts
            "tests.app.framework_tasks.add": int(framework.add.enqueue(1, 2).id),
        }
    request = traced.one("request")
    sends = {span["attributes"]["messaging.message.id"]: span for span in traced.spans("PRODUCER")}

    worker = worker_process(
        env={
            "DJANGO_SETTINGS_MODULE": WORKER_SETTINGS,
            "AUTOTASK_TEST_SPANS": str(path),
            "AUTOTASK_TEST_SCHEDULES": "tests.tracing.scheduled",
        }
    )

    def runs():
        done = [span for span in read_file(path) if span["kind"] == "CONSUMER"]
        return done if len(done) >= 6 else None  # four tasks, one retry, one periodic run

    processes = wait_for(runs, timeout=30, message="the worker's six process spans")
    spans = read_file(path)
    assert [span for span in spans if span["kind"] == "PRODUCER"] == []  # the periodic run was not sent
    for name, pk in handles.items():
        attempts = [span for span in processes if span["attributes"]["messaging.message.id"] == str(pk)]
        assert attempts and all(span["name"] == f"process {name}" for span in attempts), name
        for span in attempts:
            assert _child_of(span, sends[str(pk)]) and span["trace_id"] == request["trace_id"]
            assert span["attributes"]["messaging.client.id"] != ""
    failure = sorted(
        (span for span in processes if span["name"] == "process tests.tracing.tasks.traced_failure"),
        key=lambda span: span["attributes"]["autotask.task.attempt"],
    )
    assert [(span["attributes"]["autotask.task.outcome"], span["status"]) for span in failure] == [
        ("retry", "ERROR"),
        ("error", "ERROR"),
    ]
    [periodic] = [span for span in processes if span["name"] == "process tests.tracing.scheduled.hourly"]
    assert periodic["parent_id"] is None and periodic["links"] == []
    for inner, outer in (
        ("inside traced_add", "process tests.tracing.tasks.traced_add"),
        ("inside traced_async", "process tests.tracing.tasks.traced_async"),
        ("inside hourly", "process tests.tracing.scheduled.hourly"),
    ):
        [inside] = [span for span in spans if span["name"] == inner]
        [parent] = [span for span in processes if span["name"] == outer]
        assert inside["parent_id"] == parent["span_id"], inner
    code, output = worker.stop()
    assert code == 0 and "no OpenTelemetry tracer provider" not in output


def test_a_worker_without_a_tracer_provider_says_its_spans_are_dropped(traced, worker_process):
    handle = tasks.traced_add(1, 1)
    worker = worker_process(env={"DJANGO_SETTINGS_MODULE": WORKER_SETTINGS})
    assert handle.wait(timeout=30) and handle.result == 2
    code, output = worker.stop()
    assert code == 0
    assert "AUTOTASK_TRACING is on but this worker process has no OpenTelemetry tracer provider" in output


def test_a_worker_with_tracing_on_and_no_extra_refuses_to_start(worker_process, tmp_path):
    fake = tmp_path / "opentelemetry"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise ImportError("no OpenTelemetry in this environment")\n')
    worker = worker_process(
        env={"DJANGO_SETTINGS_MODULE": WORKER_SETTINGS, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    )
    code, output = worker.wait(timeout=60)
    assert code != 0
    assert "autotask.E060" in output and "no OpenTelemetry in this environment" in output


def test_async_runs_on_the_event_loop_each_nest_their_spans_under_their_own_run(
    traced, worker_process, tmp_path
):
    path = tmp_path / "worker-spans.jsonl"
    with tasks.tracer.start_as_current_span("request"):
        handles = [tasks.traced_async(index) for index in range(5)]
    sends = {span["attributes"]["messaging.message.id"]: span for span in traced.spans("PRODUCER")}
    worker = worker_process(
        "--async-concurrency",
        "10",
        env={"DJANGO_SETTINGS_MODULE": WORKER_SETTINGS, "AUTOTASK_TEST_SPANS": str(path)},
    )

    def runs():
        done = [span for span in read_file(path) if span["kind"] == "CONSUMER"]
        return done if len(done) >= 5 else None

    processes = wait_for(runs, timeout=30, message="the worker's five process spans")
    assert sorted(int(span["attributes"]["messaging.message.id"]) for span in processes) == sorted(
        handle.pk for handle in handles
    )
    for span in processes:
        assert _child_of(span, sends[span["attributes"]["messaging.message.id"]])
        assert span["attributes"]["autotask.task.outcome"] == "done"
    inside = [span for span in read_file(path) if span["name"] == "inside traced_async"]
    # Each coroutine's span under its own run, though they ran on one loop at once.
    assert sorted(span["parent_id"] for span in inside) == sorted(span["span_id"] for span in processes)
    code, output = worker.stop()
    assert code == 0, output
