"""@periodic_task and @cron_task: options, inactive mode, bad input at decoration time."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from autotask.definitions.schedules import ScheduledFunction, ScheduleSpec
from autotask.exceptions import InvalidTaskOptions
from autotask.tasks import cron_task, periodic_task


def job():
    return "ran"


@pytest.fixture(autouse=True)
def _isolated_registry():
    """Keep the schedules these tests declare out of other tests' registries."""
    from autotask.definitions import registry
    from autotask.definitions import schedules as scheduler

    saved = dict(scheduler._schedules), dict(registry._registry)
    yield
    scheduler._schedules.clear()
    scheduler._schedules.update(saved[0])
    registry._registry.clear()
    registry._registry.update(saved[1])


@override_settings(AUTOTASK_IS_ACTIVE=False)
def test_inactive_returns_the_function_itself():
    assert periodic_task()(job) is job
    assert periodic_task(job) is job
    assert cron_task(crontab="30 7 0 * *")(job) is job


def test_calling_a_scheduled_function_does_nothing():
    scheduled = periodic_task(seconds=60)(job)
    assert isinstance(scheduled, ScheduledFunction)
    assert scheduled() is None
    assert scheduled.run() == "ran"
    assert scheduled.spec.spec == "60"


def test_original_defaults_and_positional_arguments():
    assert periodic_task()(job).spec.seconds == 3600
    assert periodic_task(job).spec.start_now is False
    assert periodic_task(10, True)(job).spec == ScheduleSpec(
        "tests.unit.test_schedule_decorators.job", "periodic", seconds=10, start_now=True
    )
    every_minute = cron_task()(job)
    assert every_minute.spec.cron.expression == "* * * * *"


def test_legacy_and_standard_cron_are_the_same_schedule():
    legacy = cron_task(crontab="30 7 0 * *")(job).spec.cron
    lists = cron_task(minutes=[30], hours=[7], dow=[0])(job).spec.cron
    standard = cron_task(cron="30 7 * * MON")(job).spec.cron
    assert legacy.expression == lists.expression == standard.expression == "30 7 * * 1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seconds": 0}, "seconds must be a positive number"),
        ({"seconds": -5}, "seconds must be a positive number"),
        ({"seconds": "60"}, "seconds must be a positive number"),
        ({"seconds": float("inf")}, "seconds must be finite"),
        ({"start_now": "yes"}, "start_now must be True or False"),
        ({"retries": -1}, "retries must be >= 0"),
    ],
)
def test_bad_periodic_options(options, message):
    with pytest.raises(InvalidTaskOptions, match=message):
        periodic_task(**options)


def test_unknown_keywords():
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*secs"):
        periodic_task(secs=5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*minute"):
        cron_task(minute=[5])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"crontab": "60 * * * *"}, "minute"),
        ({"crontab": "* 24 * * *"}, "hour"),
        ({"crontab": "* * 7 * *"}, "dow"),
        ({"crontab": "* * * 13 *"}, "month"),
        ({"crontab": "* * * * 32"}, "dom"),
        ({"cron": "5-3 * * * *"}, "minute"),
        ({"cron": "* * * *"}, "5 fields"),
        ({"cron": "* * * FOO *"}, "month"),
        ({"cron": "1,,2 * * * *"}, "minute"),
        ({"cron": "0 0 31 2 *"}, "never"),
        ({"minutes": [60]}, "minute"),
        ({"dow": [7]}, "dow"),
    ],
)
def test_bad_cron_expressions_fail_at_decoration(options, field):
    with pytest.raises(ValueError, match=field):
        cron_task(**options)


def test_cron_and_crontab_never_guess_for_each_other():
    with pytest.raises(InvalidTaskOptions, match="cannot be combined with crontab"):
        cron_task(cron="* * * * *", crontab="* * * * *")
    with pytest.raises(InvalidTaskOptions, match="cannot be combined with minutes"):
        cron_task(cron="* * * * *", minutes=[1])


def test_timezone_names_and_objects():
    from zoneinfo import ZoneInfo

    assert cron_task(cron="0 9 * * *", timezone="Europe/Berlin")(job).spec.timezone == "Europe/Berlin"
    assert cron_task(cron="0 9 * * *", timezone=ZoneInfo("Asia/Tokyo"))(job).spec.timezone == "Asia/Tokyo"
    with pytest.raises(InvalidTaskOptions):
        cron_task(cron="0 9 * * *", timezone="Mars/Olympus")


def test_periodic_next_run_keeps_a_fixed_rate():
    spec = periodic_task(seconds=2)(job).spec
    start = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert spec.next_after(datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC), previous=start) == datetime(
        2026, 1, 1, 12, 0, 2, tzinfo=UTC
    )
    # After an outage the next run is the first future slot on the same phase.
    assert spec.next_after(datetime(2026, 1, 1, 12, 0, 31, tzinfo=UTC), previous=start) == datetime(
        2026, 1, 1, 12, 0, 32, tzinfo=UTC
    )


@override_settings(TIME_ZONE="Europe/Berlin")
def test_cron_runs_in_settings_time_zone():
    spec = cron_task(cron="0 9 * * *")(job).spec
    assert spec.next_after(datetime(2026, 7, 1, 0, 0, tzinfo=UTC)) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


def test_fixed_offset_time_zones_are_refused():
    from datetime import timedelta, timezone

    with pytest.raises(InvalidTaskOptions, match="fixed offset"):
        cron_task(cron="0 9 * * *", timezone=timezone(timedelta(hours=5)))
    assert cron_task(cron="0 9 * * *", timezone=UTC)(job).spec.timezone == "UTC"
