"""concurrency_limit/concurrency_key and rate_limit/rate_key: bad input fails at decoration or call time."""

import pytest

from autotask.definitions import limits
from autotask.definitions.options import TaskOptions
from autotask.exceptions import InvalidTaskOptions
from autotask.tasks import delayed_task, periodic_task


def f(account_id, note=""):
    return account_id


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("100/m", (100, 60.0)),
        ("1/s", (1, 1.0)),
        ("10/5s", (10, 5.0)),
        ("3/h", (3, 3600.0)),
        (" 2 / 1.5m ", (2, 90.0)),
    ],
)
def test_rate_values(given, stored):
    assert TaskOptions(rate_limit=given).rate_limit == stored


@pytest.mark.parametrize(
    "bad", ["100/d", "100", "/m", "0/m", "-1/m", "1/0s", "a/m", "1/ms", 100, (1, 2), b"1/s"]
)
def test_bad_rate_limit_is_refused_naming_the_option(bad):
    with pytest.raises(InvalidTaskOptions, match="rate_limit"):
        delayed_task(rate_limit=bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_concurrency_limit_is_refused_naming_the_option(bad):
    with pytest.raises(InvalidTaskOptions, match="concurrency_limit"):
        delayed_task(concurrency_limit=bad)


def test_a_limit_of_zero_says_why():
    with pytest.raises(InvalidTaskOptions, match="never run"):
        delayed_task(concurrency_limit=0)


@pytest.mark.parametrize("option", ["concurrency_key", "rate_key"])
@pytest.mark.parametrize("bad", [5, b"key", "", ["a"], "k-{", "k-{0}"])
def test_bad_keys_are_refused_naming_the_option(option, bad):
    limit = {"concurrency_limit": 1} if option == "concurrency_key" else {"rate_limit": "1/s"}
    with pytest.raises(InvalidTaskOptions, match=option):
        delayed_task(**limit, **{option: bad})


def test_a_concurrency_key_without_a_limit_is_refused():
    with pytest.raises(InvalidTaskOptions, match="concurrency_key needs concurrency_limit"):
        delayed_task(concurrency_key="k")


def test_a_rate_key_without_a_rate_is_refused():
    with pytest.raises(InvalidTaskOptions, match="rate_key needs rate_limit"):
        delayed_task(rate_key="k")


def test_unique_and_concurrency_limited_together_is_refused():
    with pytest.raises(InvalidTaskOptions, match="unique"):
        delayed_task(unique=True, concurrency_limit=1)


@pytest.mark.parametrize("option", ["concurrency_key", "rate_key"])
def test_a_template_naming_no_parameter_is_refused_at_decoration(option):
    limit = {"concurrency_limit": 1} if option == "concurrency_key" else {"rate_limit": "1/s"}
    with pytest.raises(InvalidTaskOptions, match=rf"{option} template 'a-\{{accountid\}}' names"):
        delayed_task(**limit, **{option: "a-{accountid}"})(f)


def test_bad_options_in_using_fail_at_the_call_of_using():
    task = delayed_task(concurrency_limit=2, concurrency_key="a-{account_id}")(f)
    with pytest.raises(InvalidTaskOptions, match="concurrency_limit"):
        task.using(concurrency_limit=0)
    with pytest.raises(InvalidTaskOptions, match="rate_limit"):
        task.using(rate_limit="5/week")
    with pytest.raises(InvalidTaskOptions, match="concurrency_key template"):
        task.using(concurrency_key="b-{nope}")
    assert task.using(concurrency_limit=5).options.concurrency_limit == 5


def test_periodic_tasks_validate_the_limits_too():
    with pytest.raises(InvalidTaskOptions, match="rate_limit"):
        periodic_task(seconds=60, rate_limit="1/y")


def test_keys_of_a_call():
    options = TaskOptions(concurrency_limit=2, concurrency_key="a-{account_id}", rate_limit="1/s")
    assert limits.concurrency_key("m.f", options, f, (7,), {}) == "a-7"
    assert limits.rate_key("m.f", options, f, (7,), {}) == "m.f"  # no rate_key: the task's name
    assert limits.concurrency_key("m.f", TaskOptions(), f, (7,), {}) is None
    by_callable = TaskOptions(
        concurrency_limit=1, concurrency_key=lambda account_id, note="": f"c{account_id}"
    )
    assert limits.concurrency_key("m.f", by_callable, f, (3,), {}) == "c3"
    long_key = limits.concurrency_key(
        "m.f", TaskOptions(concurrency_limit=1, concurrency_key="x" * 300), f, (1,), {}
    )
    assert len(long_key) <= limits.KEY_LENGTH and "sha256" in long_key


def test_a_key_callable_returning_no_str_fails_the_call():
    options = TaskOptions(concurrency_limit=1, concurrency_key=lambda account_id, note="": account_id)
    with pytest.raises(TypeError, match="concurrency_key"):
        limits.concurrency_key("m.f", options, f, (7,), {})


def test_the_rate_is_stored_with_the_row_options():
    assert TaskOptions(rate_limit="10/5s").stored() == {"rate_limit": [10, 5.0]}
    assert "rate_limit" not in TaskOptions().stored()
