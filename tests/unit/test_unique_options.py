"""unique= and unique_key=: bad input fails at decoration or call time, naming the option."""

from datetime import timedelta

import pytest

from autotask.definitions import unique
from autotask.definitions.options import TaskOptions
from autotask.exceptions import InvalidTaskOptions
from autotask.tasks import delayed_task


def f(user_id, note=""):
    return user_id


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        (False, None),
        (True, "active"),
        ("active", "active"),
        ("waiting", "waiting"),
        (timedelta(minutes=5), 300.0),
        (60, 60.0),
        (0.5, 0.5),
    ],
)
def test_unique_values(given, stored):
    assert TaskOptions(unique=given).unique == stored


BAD_UNIQUE = ["running", "", 0, -5, timedelta(0), float("inf"), float("nan"), [1], object()]


@pytest.mark.parametrize("bad", BAD_UNIQUE)
def test_bad_unique_is_refused_naming_the_option(bad):
    with pytest.raises(InvalidTaskOptions, match="unique"):
        delayed_task(unique=bad)


@pytest.mark.parametrize("bad", [5, b"key", "", ["a"]])
def test_bad_unique_key_is_refused_naming_the_option(bad):
    with pytest.raises(InvalidTaskOptions, match="unique_key"):
        delayed_task(unique=True, unique_key=bad)


@pytest.mark.parametrize("bad", ["user-{", "user-{0}", "user-{}", "{user.id}"])
def test_malformed_template_is_refused(bad):
    with pytest.raises(InvalidTaskOptions, match="unique_key"):
        delayed_task(unique=True, unique_key=bad)


def test_template_naming_no_parameter_is_refused_at_decoration():
    with pytest.raises(InvalidTaskOptions, match=r"unique_key template 'u-\{userid\}' names \{userid\}"):
        delayed_task(unique=True, unique_key="u-{userid}")(f)


def test_template_naming_no_parameter_is_refused_in_using():
    task = delayed_task(unique=True)(f)
    with pytest.raises(InvalidTaskOptions, match="unique_key"):
        task.using(unique_key="{nope}")
    with pytest.raises(InvalidTaskOptions, match="unique"):
        task.using(unique="sometimes")


def test_callable_returning_no_str_fails_at_call_time():
    options = TaskOptions(unique=True, unique_key=lambda user_id, note="": user_id)
    with pytest.raises(TypeError, match=r"unique_key .* must return a non-empty str, not 7"):
        unique.row_key("t", options, f, (7,), {}, "[]", None)


def test_template_formats_the_arguments_by_name_with_defaults():
    options = TaskOptions(unique="waiting", unique_key="u-{user_id}-{note}")
    key, scope = unique.row_key("app.f", options, f, (7,), {}, "[]", None)
    assert (key, scope) == ("app.f:u-7-", unique.WAITING)
    key, _ = unique.row_key("app.f", options, f, (), {"user_id": 8, "note": "x"}, "[]", None)
    assert key == "app.f:u-8-x"


def test_default_key_is_the_encoded_arguments_hashed_and_namespaced():
    options = TaskOptions(unique=True)
    one, _ = unique.row_key("app.f", options, f, (1,), {}, "[[1],{}]", None)
    other, _ = unique.row_key("app.g", options, f, (1,), {}, "[[1],{}]", None)
    assert one.startswith("app.f:args:") and other.startswith("app.g:args:") and one[6:] == other[6:]
    assert unique.row_key("app.f", options, f, (2,), {}, "[[2],{}]", None)[0] != one


def test_a_key_alone_asks_for_the_active_scope():
    assert unique.row_key("t", TaskOptions(unique_key="k"), f, (1,), {}, "[]", None)[1] == unique.ACTIVE


def test_window_key_holds_the_period_and_long_keys_are_hashed():
    from datetime import UTC, datetime

    options = TaskOptions(unique=3600, unique_key="{user_id}")
    at = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    key, scope = unique.row_key("t", options, f, ("x",), {}, "[]", at)
    assert scope == unique.WINDOW and key == f"t:x@{int(at.timestamp() // 3600)}"
    assert unique.window_end(3600, at) == 1800
    long_key = unique.stored_key("t" * 300, "k" * 300)
    assert len(long_key) <= unique.KEY_LENGTH and ":sha256:" in long_key
