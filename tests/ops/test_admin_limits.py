"""The admin shows a limited task's key, limit and slot, lists held tasks, and cancels them."""

import pytest
from django.test import Client

from autotask.models import TaskQueue
from autotask.task import CANCELLED, HELD, WAITING
from tests.ops.test_admin import LIST, act, change_url, make_task, user_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    c = Client()
    c.force_login(user_with("view_taskqueue", "change_taskqueue"))
    return c


def limited(status, key="acct-1", limit=2, **fields):
    return make_task(status=status, concurrency_key=key, concurrency_limit=limit, **fields)


def test_the_task_page_shows_the_key_the_limit_and_the_slot(client):
    limited(WAITING)
    held = limited(HELD)
    html = client.get(change_url(held)).content.decode()
    assert "acct-1" in html
    assert "Waiting for a slot: 1 of 2 taken" in html
    rated = make_task(options={"rate_limit": [10, 60.0], "rate_key": "api-x"})
    html = client.get(change_url(rated)).content.decode()
    assert "10 starts per 60 s (key api-x)" in html


def test_the_list_filters_held_tasks_and_the_summary_counts_them(client):
    held = limited(HELD)
    waiting = make_task(WAITING)
    response = client.get(LIST, {"status__exact": HELD})
    assert [row.pk for row in response.context["cl"].result_list] == [held.pk]
    assert waiting.pk != held.pk
    html = response.content.decode()
    assert "Waiting for a slot" in html
    assert 'class="autotask-status autotask-held"' in html


def test_held_tasks_can_be_cancelled(client):
    held = limited(HELD)
    act(client, "cancel_waiting", [held])
    assert TaskQueue.objects.get(pk=held.pk).status == CANCELLED
