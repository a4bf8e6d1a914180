"""Decorator options, inactive mode and bad input (no database needed)."""

import datetime

import pytest
from django.test import override_settings

from autotask import models, tasks
from autotask import task as task_module
from autotask.definitions.options import TaskOptions
from autotask.exceptions import InvalidTaskOptions, SerializationError
from autotask.tasks import Task, delayed_task


def plain(a, b=1):
    return a + b


def test_status_constants_are_the_same_everywhere():
    assert (tasks.WAITING, tasks.RUNNING, tasks.DONE, tasks.ERROR) == (1, 2, 3, 4)
    for name in ("WAITING", "RUNNING", "DONE", "ERROR"):
        assert getattr(tasks, name) is getattr(models, name) is getattr(task_module, name)


@override_settings(AUTOTASK_IS_ACTIVE=False)
def test_inactive_returns_the_function_itself():
    assert delayed_task()(plain) is plain
    assert delayed_task(plain) is plain
    assert delayed_task(delay=5, retries=1, ttl=10)(plain) is plain
    assert delayed_task()(plain)(1, 2) == 3


@override_settings(AUTOTASK_IS_ACTIVE=False)
def test_inactive_still_validates():
    with pytest.raises(InvalidTaskOptions, match="delay"):
        delayed_task(delay=-1)


def test_with_and_without_parentheses():
    for decorated in (delayed_task(plain), delayed_task()(plain), delayed_task(5)(plain)):
        assert isinstance(decorated, Task)
        assert decorated.name == "tests.unit.test_decorators.plain"
        assert decorated.__name__ == "plain"
        assert decorated.run(2) == 3
    assert delayed_task(5, 2, 60)(plain).options == TaskOptions(delay=5, retries=2, ttl=60)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": -1}, "delay must be >= 0"),
        ({"delay": "soon"}, "delay must be a number"),
        ({"delay": True}, "delay must be a number"),
        ({"delay": float("nan")}, "delay must be a finite number"),
        ({"ttl": -0.5}, "ttl must be >= 0"),
        ({"ttl": None}, "ttl must be a number"),
        ({"retries": -1}, "retries must be >= 0"),
        ({"retries": 1.5}, "retries must be an integer"),
        ({"retries": "2"}, "retries must be an integer"),
        ({"priority": 101}, "priority must be between -100 and 100"),
        ({"queue": ""}, "queue must be a non-empty string"),
        ({"queue": 3}, "queue must be a non-empty string"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"backoff": 0.5}, "backoff must be >= 1.0"),
        ({"failed_ttl": -1}, "failed_ttl must be >= 0"),
        ({"failed_ttl": "7d"}, "failed_ttl must be a number"),
        ({"failed_ttl": float("inf")}, "failed_ttl must be a finite number"),
    ],
)
def test_bad_option_values_fail_at_decoration(options, message):
    with pytest.raises(InvalidTaskOptions, match=message):
        delayed_task(**options)


def test_unknown_keyword_fails_and_names_the_allowed_ones():
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) dealy; it accepts delay"):
        delayed_task(dealy=1)


def test_too_many_positional_arguments():
    with pytest.raises(TypeError, match="from 0 to 3 positional arguments"):
        delayed_task(1, 2, 3, 4)
    with pytest.raises(TypeError, match="multiple values for argument 'delay'"):
        delayed_task(1, delay=2)


def test_call_site_overrides_are_validated():
    task = delayed_task(plain)
    assert task.using(delay=3, queue="mail").options.queue == "mail"
    assert task.using(delay=3).options.delay == 3.0
    assert task.options.delay == 0.0  # the original is unchanged
    with pytest.raises(InvalidTaskOptions, match="priority"):
        task.using(priority=1000)
    with pytest.raises(TypeError, match="unexpected keyword"):
        task.using(prio=1)


def test_functions_a_worker_cannot_import_are_refused():
    def local():
        pass

    with pytest.raises(InvalidTaskOptions, match="define it at module level"):
        delayed_task(local)
    with pytest.raises(InvalidTaskOptions, match="define it at module level"):
        delayed_task(lambda: None)


def test_unserialisable_argument_fails_in_the_caller_and_stores_nothing():
    task = delayed_task(plain)

    class Thing:
        pass

    # No database access is allowed here: the error comes before any INSERT.
    with pytest.raises(SerializationError, match=r"args\[0\]"):
        task(Thing())
    with pytest.raises(SerializationError, match=r"kwargs\['b'\]"):
        task(1, b=open)
    with pytest.raises(TypeError):  # SerializationError is a TypeError
        task.enqueue_many([(1,), (Thing(),)])


def test_options_are_stored_compactly():
    options = TaskOptions(retries=2, retry_delay=1.5, timeout=None)
    assert options.stored() == {"retry_delay": 1.5}
    assert TaskOptions(delay=datetime.timedelta(seconds=1).total_seconds()).delay == 1.0


def test_decorator_signatures_list_their_parameters_and_defaults():
    import dataclasses
    import inspect

    from autotask.tasks import cron_task, periodic_task

    def defaults(func):
        return {name: p.default for name, p in inspect.signature(func).parameters.items()}

    def positional(func):
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
        return [name for name, p in inspect.signature(func).parameters.items() if p.kind in kinds]

    # One source of truth: every TaskOptions field with its default.
    options = {f.name: f.default for f in dataclasses.fields(TaskOptions)}
    assert tuple(options) == TaskOptions.NAMES
    run_options = {k: v for k, v in options.items() if k != "delay"}
    assert defaults(delayed_task) == options
    assert positional(delayed_task) == ["delay", "retries", "ttl"]
    assert defaults(periodic_task) == {"seconds": 3600, "start_now": False, **run_options}
    assert positional(periodic_task) == ["seconds", "start_now"]
    legacy = dict.fromkeys(("minutes", "hours", "dow", "months", "dom", "crontab"))
    assert defaults(cron_task) == {**legacy, "cron": None, "timezone": None, **run_options}
    assert positional(cron_task) == list(legacy)
    assert "retries=0" in str(inspect.signature(delayed_task))


@override_settings(AUTOTASK_IS_ACTIVE=False)
def test_positional_use_as_the_original_allowed():
    from autotask.tasks import cron_task, periodic_task

    assert delayed_task(60, 2)(plain) is plain
    assert periodic_task(30, True)(plain) is plain
    assert cron_task([0], [3])(plain) is plain


def test_enqueue_many_names_the_bad_call(monkeypatch):
    task = delayed_task(plain)

    class Thing:
        pass

    # No database access is allowed here: the error comes before any INSERT.
    calls = [(i,) for i in range(17)] + [(Thing(),)]
    with pytest.raises(SerializationError, match=r"^calls\[17\] of enqueue_many: .*args\[0\]"):
        task.enqueue_many(calls)
    with pytest.raises(TypeError, match=r"^calls\[1\] of enqueue_many must be a Call or a tuple"):
        task.enqueue_many([(1,), 5])


def test_failed_ttl_is_stored_only_when_given():
    assert "failed_ttl" not in delayed_task(plain).options.stored()  # AUTOTASK_FAILED_TTL applies
    assert delayed_task(failed_ttl=3600)(plain).options.stored() == {"failed_ttl": 3600.0}
    forever = delayed_task(plain).using(failed_ttl=None)
    assert forever.options.stored() == {"failed_ttl": None}  # kept until deleted
    with pytest.raises(InvalidTaskOptions, match="failed_ttl"):
        delayed_task(plain).using(failed_ttl=-5)
