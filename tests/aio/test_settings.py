"""AUTOTASK_ASYNC_CONCURRENCY and run_autotask --async-concurrency: bad values are refused early."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from autotask.checks import check_setting_values
from autotask.conf import conf


@pytest.mark.parametrize("value", [-1, 1.5, "100", True, None])
def test_a_bad_async_concurrency_is_an_error_when_read_and_in_the_system_check(value):
    with override_settings(AUTOTASK_ASYNC_CONCURRENCY=value):
        with pytest.raises(ImproperlyConfigured, match="AUTOTASK_ASYNC_CONCURRENCY must be an integer >= 0"):
            conf.ASYNC_CONCURRENCY  # noqa: B018 - the read is the test
        errors = check_setting_values()
    assert [error.id for error in errors] == ["autotask.E010"]
    assert "AUTOTASK_ASYNC_CONCURRENCY" in errors[0].msg


@pytest.mark.parametrize("value", [0, 1, 1000])
def test_async_concurrency_takes_0_and_up(value):
    with override_settings(AUTOTASK_ASYNC_CONCURRENCY=value):
        assert value == conf.ASYNC_CONCURRENCY
        assert check_setting_values() == []


def test_the_default_is_100():
    assert conf.ASYNC_CONCURRENCY == 100


@pytest.mark.parametrize("value", ["-1", "many"])
def test_run_autotask_refuses_a_bad_async_concurrency(value):
    with pytest.raises(CommandError, match="--async-concurrency"):
        call_command("run_autotask", "--async-concurrency", value)
