"""Unique tasks through the public API: calls, enqueue_many, using(), retry, schedules, status."""

import importlib.util
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from autotask import monitor
from autotask.definitions import unique
from autotask.definitions.options import TaskOptions
from autotask.definitions.schedules import ScheduleSpec
from autotask.exceptions import InvalidTaskOptions
from autotask.maintenance import scheduling
from autotask.models import TaskQueue
from autotask.task import DONE, ERROR, WAITING
from autotask.tasks import Call
from tests.app import unique_tasks

pytestmark = pytest.mark.django_db


def test_a_duplicate_call_returns_the_existing_task_flagged():
    first = unique_tasks.by_arguments("a")
    again = unique_tasks.by_arguments("a")
    other = unique_tasks.by_arguments("b")
    assert first.duplicate is False and again.duplicate is True and other.duplicate is False
    assert again == first and other != first
    assert TaskQueue.objects.count() == 2
    stored = TaskQueue.objects.get(pk=first.pk)
    assert stored.unique_key.startswith("tests.app.unique_tasks.by_arguments:args:")
    assert stored.unique_scope == unique.ACTIVE


def test_template_key_ignores_other_arguments_and_frees_on_finish():
    first = unique_tasks.per_user(7, note="x")
    assert unique_tasks.per_user(user_id=7, note="y").duplicate is True
    assert TaskQueue.objects.get(pk=first.pk).unique_key == "tests.app.unique_tasks.per_user:user-7"
    TaskQueue.objects.filter(pk=first.pk).update(status=DONE)
    assert unique_tasks.per_user(7).duplicate is False


def test_enqueue_many_flags_each_duplicate_call():
    held = unique_tasks.per_user(1)
    handles = unique_tasks.per_user.enqueue_many([(1,), (2,), Call(user_id=2, note="n"), (3,)])
    assert [h.duplicate for h in handles] == [True, False, True, False]
    assert handles[0] == held and handles[2] == handles[1]
    assert TaskQueue.objects.count() == 3


def test_enqueue_many_of_a_plain_task_flags_nothing():
    from tests.app import tasks

    assert [h.duplicate for h in tasks.add.enqueue_many([(1, 2), (1, 2)])] == [False, False]


def test_using_sets_the_key_of_one_call():
    keyed = unique_tasks.per_user.using(unique_key="shared")
    first, again = keyed(1), keyed(2)
    assert again.duplicate is True and again == first
    assert unique_tasks.per_user(1).duplicate is False  # its own key, user-1
    # A key on a task not declared unique asks for the "active" scope.
    from tests.app import tasks

    one = tasks.add.using(unique_key="sum")(1, 2)
    assert tasks.add.using(unique_key="sum")(3, 4) == one
    assert TaskQueue.objects.get(pk=one.pk).unique_scope == unique.ACTIVE


def test_a_callable_key_returning_no_str_stores_nothing():
    bad = unique_tasks.per_user.using(unique_key=lambda user_id, note="": user_id)
    with pytest.raises(TypeError, match="unique_key"):
        bad(5)
    with pytest.raises(InvalidTaskOptions, match="unique_key"):
        unique_tasks.per_user.using(unique_key="{missing}")
    assert TaskQueue.objects.count() == 0


def test_a_window_row_is_kept_until_its_period_ends(settings):
    settings.AUTOTASK_FAILED_TTL = 1.0  # shorter than any period left: raised to its end
    handle = unique_tasks.hourly("k")
    stored = TaskQueue.objects.get(pk=handle.pk)
    until = unique.window_end(3600.0, stored.created_at)
    assert stored.unique_scope == unique.WINDOW
    assert stored.ttl >= until and stored.options["failed_ttl"] >= until > 0
    TaskQueue.objects.filter(pk=handle.pk).update(status=DONE)
    assert unique_tasks.hourly("k").duplicate is True  # finished, same period: still held


def test_retry_failed_leaves_a_task_whose_key_is_taken_failed():
    failed = unique_tasks.per_user(9)
    TaskQueue.objects.filter(pk=failed.pk).update(status=ERROR, attempts=1)
    holder = unique_tasks.per_user(9)
    other = unique_tasks.per_user(10)
    TaskQueue.objects.filter(pk=other.pk).update(status=ERROR, attempts=1)
    taken = []
    retried, refused = monitor.retry_failed_tasks(TaskQueue.objects.all(), key_taken=taken)
    assert (retried, refused, taken) == (1, set(), [failed.pk])
    assert (failed.status, holder.status, other.status) == (ERROR, WAITING, WAITING)


def test_admin_retry_says_which_tasks_kept_failed(admin_client):
    from tests.ops.test_admin import act, messages_of

    failed = unique_tasks.per_user(9)
    TaskQueue.objects.filter(pk=failed.pk).update(status=ERROR, attempts=1)
    unique_tasks.per_user(9)
    response = act(admin_client, "retry_failed", [TaskQueue.objects.get(pk=failed.pk)])
    assert f"Not retried, another task holds their unique key (they stay failed): #{failed.pk}." in (
        messages_of(response)
    )
    page = admin_client.get(f"/admin/autotask/taskqueue/{failed.pk}/change/")
    assert b"tests.app.unique_tasks.per_user:user-9" in page.content


def test_a_unique_schedule_skips_an_occurrence_while_its_run_holds_the_key():
    name = "tests.app.unique_tasks.by_arguments"
    spec = ScheduleSpec(name=name, kind="periodic", seconds=1, options=TaskOptions(unique=True))
    now = timezone.now()
    scheduling._enqueue_run(spec, None, now, "default")
    scheduling._enqueue_run(spec, None, now + timedelta(seconds=1), "default")
    assert TaskQueue.objects.count() == 1
    TaskQueue.objects.update(status=DONE)
    scheduling._enqueue_run(spec, None, now + timedelta(seconds=2), "default")
    assert TaskQueue.objects.filter(status=WAITING).count() == 1


def test_status_json_counts_the_tasks_holding_keys():
    unique_tasks.per_user(1)
    unique_tasks.not_started("a")
    unique_tasks.not_started("b")
    from io import StringIO

    out = StringIO()
    with pytest.raises(SystemExit):  # no worker: unhealthy, but the JSON is printed
        call_command("autotask_status", "--json", stdout=out)
    assert json.loads(out.getvalue())["unique"] == {"active": 1, "waiting": 2, "window": 0}


frameworks = pytest.mark.skipif(
    not (importlib.util.find_spec("django.tasks") or importlib.util.find_spec("django_tasks")),
    reason="no tasks framework installed",
)


@frameworks
def test_the_django_tasks_backend_takes_unique_as_an_option():
    from tests.app import framework_tasks as ft

    keyed = ft.echo.using(unique=True, unique_key="echo-{args}")
    first = keyed.enqueue(1)
    again = keyed.enqueue(1)
    assert again.id == first.id and TaskQueue.objects.count() == 1
    assert ft.echo.using(unique=True).enqueue(2).id != first.id
    with pytest.raises(Exception, match="unique"):
        ft.echo.using(unique="sometimes")
