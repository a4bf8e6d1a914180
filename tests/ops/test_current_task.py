"""autotask.current_task(): what a running task knows about itself."""

import pytest

import autotask
from autotask import testing
from autotask.tasks import delayed_task

pytestmark = pytest.mark.django_db

seen = []


@delayed_task(queue="inner", retries=1, retry_delay=0)
def introspect(fail_first):
    current = autotask.current_task()
    seen.append(current)
    if fail_first and current.attempt == 1:
        raise ValueError("first attempt fails")
    return current.id


@delayed_task(timeout=5)
async def introspect_async():
    current = autotask.current_task()
    seen.append(current)
    return current.id


@pytest.fixture(autouse=True)
def _forget():
    seen.clear()


def ran_of(handle):
    """The run of ``handle``'s task among those run_due ran (it also runs what other tests declared)."""
    (ran,) = [ran for ran in testing.run_due() if ran.pk == handle.pk]
    return ran


def test_outside_a_task_there_is_no_current_task():
    assert autotask.current_task() is None


def test_a_sync_task_sees_its_id_queue_options_and_attempt():
    handle = introspect(False)
    assert ran_of(handle).result == handle.pk
    (current,) = [current for current in seen if current.id == handle.pk]
    assert (current.id, current.name, current.queue, current.attempt) == (
        handle.pk,
        "tests.ops.test_current_task.introspect",
        "inner",
        1,
    )
    assert current.max_attempts == 2
    assert current.options["retry_delay"] == 0
    assert autotask.current_task() is None  # dropped when the task returned


def test_a_retry_sees_its_attempt_number():
    handle = introspect(True)
    testing.run_due()
    assert [current.attempt for current in seen] == [1, 2]
    assert handle.result == handle.pk


def test_an_async_task_sees_it_in_its_coroutine():
    handle = introspect_async()
    assert ran_of(handle).result == handle.pk
    assert seen[0].id == handle.pk


def test_a_stop_request_is_seen_and_calls_the_runners_callbacks():
    from autotask.context import CurrentTask
    from autotask.exceptions import TaskStopped

    current = CurrentTask(id=7, name="x.y", attempt=1, max_attempts=1, queue="default")
    calls = []
    current.on_stop(lambda: calls.append("first"))
    current.raise_if_stopped()  # nothing asked yet
    assert not current.should_stop
    current.request_stop()
    current.request_stop()  # once is enough
    current.on_stop(lambda: calls.append("late"))  # registered after the request: called at once
    assert current.should_stop
    assert calls == ["first", "late"]
    with pytest.raises(TaskStopped, match=r"x\.y #7 was asked to stop"):
        current.raise_if_stopped()
