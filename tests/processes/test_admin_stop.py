"""The admin's Stop: a button on a running task's page, an action on the list, and a worker honouring it."""

import pytest
from django.contrib.admin.models import CHANGE
from django.urls import reverse
from django.utils import timezone

from autotask.models import TaskQueue
from autotask.task import CANCELLED, DONE, RUNNING, WAITING
from tests.app import stopping
from tests.conftest import wait_for
from tests.ops.test_admin import act, change_url, make_task, messages_of
from tests.ops.test_admin_task_page import button_url, history, shown_buttons


@pytest.mark.django_db
def test_stop_asks_the_worker_and_writes_the_history(admin_client):
    running = make_task(RUNNING)
    response = admin_client.post(button_url(running, "stop"), follow=True)
    assert response.redirect_chain == [(change_url(running), 302)]
    assert messages_of(response) == [f"Asked the worker running task #{running.pk} to stop it."]
    row = TaskQueue.objects.get(pk=running.pk)
    assert row.status == RUNNING and row.stop_requested_at is not None
    assert history(running) == [(CHANGE, "Asked to stop while running.")]
    assert shown_buttons(admin_client, running) == []  # asked once: no second button
    assert "Stop requested at" in admin_client.get(change_url(running)).content.decode()
    listed = admin_client.get(reverse("admin:autotask_taskqueue_changelist")).content.decode()
    assert "Running (asked to stop)" in listed


@pytest.mark.django_db
def test_stop_leaves_a_task_that_finished_meanwhile_alone(admin_client):
    done = make_task(DONE)
    response = admin_client.post(button_url(done, "stop"), follow=True)
    assert messages_of(response) == [f"Task #{done.pk} was not stopped: only running tasks can be stopped."]
    assert TaskQueue.objects.get(pk=done.pk).stop_requested_at is None and history(done) == []


@pytest.mark.django_db
def test_the_stop_action_asks_only_running_tasks(admin_client):
    running, waiting = make_task(RUNNING), make_task(WAITING)
    earlier = make_task(RUNNING, stop_requested_at=timezone.now() - timezone.timedelta(minutes=1))
    response = act(admin_client, "stop_running", [running, waiting, earlier])
    assert "Asked the workers to stop 2 tasks." in messages_of(response)[0]
    rows = {row.pk: row for row in TaskQueue.objects.all()}
    assert rows[running.pk].stop_requested_at is not None
    assert rows[waiting.pk].stop_requested_at is None and rows[waiting.pk].status == WAITING
    assert rows[earlier.pk].stop_requested_at == earlier.stop_requested_at  # the first ask is kept


@pytest.mark.django_db(transaction=True)
def test_a_worker_stops_a_task_the_admin_stopped(admin_client, worker_process, tmp_path):
    worker_process()
    marker = tmp_path / "started"
    handle = stopping.cooperative(str(marker))
    wait_for(marker.exists, message="the task to start")
    act(admin_client, "stop_running", [TaskQueue.objects.get(pk=handle.pk)])
    assert handle.wait(15)
    assert handle.status == CANCELLED and handle.attempts == 1


@pytest.mark.django_db
def test_the_status_json_says_which_running_tasks_were_asked_to_stop():
    from autotask import monitor
    from autotask.models import Worker

    now = timezone.now()
    Worker.objects.create(worker_id="w1:1:a", hostname="w1", pid=1, last_seen=now)
    asked = make_task(RUNNING, worker_id="w1:1:a", stop_requested_at=now)
    plain = make_task(RUNNING, worker_id="w1:1:a")
    (worker,) = monitor.workers_running("default", now)
    tasks = {task["id"]: task for task in worker["running"]}
    assert tasks[asked.pk]["stop_requested_at"] and "stop_requested_at" not in tasks[plain.pk]


@pytest.mark.django_db
def test_autotask_status_counts_the_running_tasks_asked_to_stop():
    import json

    from tests.ops.test_commands import status

    make_task(RUNNING, stop_requested_at=timezone.now())
    make_task(RUNNING)
    _, out, _ = status("--json")
    assert json.loads(out)["stopping"] == 1
    _, text, _ = status()
    assert "Running tasks asked to stop: 1" in text
