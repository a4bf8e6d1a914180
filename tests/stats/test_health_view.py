"""The JSON health view: the verdict of autotask_status, as HTTP 200 or 503."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from autotask import monitor
from autotask.models import TaskQueue, Worker
from autotask.task import WAITING

pytestmark = pytest.mark.django_db
URL = "/autotask/health/"


def command_verdict(*args):
    """Run ``autotask_status --json``; return (exit code, its JSON)."""
    out = StringIO()
    try:
        call_command("autotask_status", "--json", *args, stdout=out, stderr=StringIO())
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def worker(seen_ago=0.0):
    return Worker.objects.create(
        worker_id="h:1:a", hostname="h", pid=1, last_seen=timezone.now() - timedelta(seconds=seen_ago)
    )


def waiting(age):
    at = timezone.now() - timedelta(seconds=age)
    return TaskQueue.objects.create(function="tests.app.tasks.add", status=WAITING, scheduled_at=at)


@pytest.mark.parametrize(
    ("setup", "query", "args"),
    [
        (lambda: None, "", ()),  # no worker: unhealthy
        (lambda: None, "?no_worker_check=1", ("--no-worker-check",)),
        (lambda: worker(), "", ()),
        (lambda: worker(seen_ago=120), "", ()),  # silent for two leases: not alive
        (lambda: worker(seen_ago=120), "?worker_timeout=300", ("--worker-timeout", "300")),
        (lambda: (worker(), waiting(90)), "?max_wait=60", ("--max-wait", "60")),
        (lambda: (worker(), waiting(30)), "?max_wait=60", ("--max-wait", "60")),
    ],
)
def test_same_verdict_as_autotask_status(client, setup, query, args):
    setup()
    response = client.get(URL + query)
    code, status = command_verdict(*args)
    body = response.json()
    assert response.status_code == (200 if code == 0 else 503)
    assert body["healthy"] is status["healthy"] is (code == 0)
    assert body["problems"] == status["problems"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthy_answer(client):
    worker()
    body = client.get(URL).json()
    assert body["healthy"] is True and body["problems"] == [] and body["workers_alive"] == 1


@pytest.mark.parametrize(
    "query",
    ["?max_wait=-1", "?max_wait=soon", "?max_wait=nan", "?worker_timeout=inf", "?no_worker_check=yes"],
)
def test_bad_parameters_are_refused(client, query):
    response = client.get(URL + query)
    assert response.status_code == 400
    assert "must be" in response.json()["error"]


def test_only_get(client):
    assert client.post(URL).status_code == 405


def test_a_database_error_is_unhealthy(client, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(monitor, "health", broken)
    response = client.get(URL)
    assert response.status_code == 503
    assert "cannot read the task tables: connection refused" in response.json()["problems"][0]


def test_the_verdict_reads_no_task_table_aggregate(django_assert_max_num_queries):
    # Workers, and one probe for the oldest due task: no count over the task table.
    worker()
    with django_assert_max_num_queries(2):
        assert monitor.health()["healthy"] is True
