"""The new options and settings fail early, with a message that says what is wrong."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from autotask import checks
from autotask.conf import conf
from autotask.definitions.options import TaskOptions
from autotask.exceptions import InvalidTaskOptions
from autotask.tasks import delayed_task


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"soft_timeout": 0}, "soft_timeout must be > 0"),
        ({"soft_timeout": -1}, "soft_timeout must be >= 0"),
        ({"soft_timeout": "5"}, "soft_timeout must be a number of seconds"),
        ({"soft_timeout": 10, "timeout": 10}, "soft_timeout (10) must be shorter than timeout (10)"),
        ({"soft_timeout": 20, "timeout": 10}, "must be shorter than timeout"),
        ({"isolated": 1}, "isolated must be True or False, not 1"),
        ({"isolated": "yes"}, "isolated must be True or False"),
    ],
)
def test_bad_limits_and_isolation_are_refused_at_declaration(options, message):
    with pytest.raises(InvalidTaskOptions, match=message.replace("(", r"\(").replace(")", r"\)")):
        TaskOptions(**options)
    with pytest.raises(InvalidTaskOptions):
        delayed_task(**options)(lambda: None)


def test_the_limits_and_isolation_are_stored_for_the_worker():
    stored = TaskOptions(timeout=10, soft_timeout=5, isolated=True).stored()
    assert stored == {"timeout": 10.0, "soft_timeout": 5.0, "isolated": True}
    assert "isolated" not in TaskOptions().stored()


@pytest.mark.parametrize("name", ["PROCESSES", "CHILD_MAX_TASKS", "CHILD_MAX_MEMORY"])
@pytest.mark.parametrize("value", [0, -1, True, "2", 1.5])
def test_bad_process_settings_are_refused(name, value):
    with override_settings(**{f"AUTOTASK_{name}": value}):
        with pytest.raises(ImproperlyConfigured, match=f"AUTOTASK_{name} must be None or an integer >= 1"):
            getattr(conf, name)
        errors = [e for e in checks.check_setting_values() if e.id == "autotask.E010"]
        assert len(errors) == 1 and f"AUTOTASK_{name}" in errors[0].msg


@pytest.mark.parametrize("name", ["PROCESSES", "CHILD_MAX_TASKS", "CHILD_MAX_MEMORY"])
def test_good_process_settings_pass(name):
    for value in (None, 1, 8):
        with override_settings(**{f"AUTOTASK_{name}": value}):
            assert getattr(conf, name) == value
            assert not [e for e in checks.check_setting_values() if e.id == "autotask.E010"]
