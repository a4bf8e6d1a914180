"""The worker's statistics buffer: what one task adds, what a write takes and keeps."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from autotask.conf import conf
from autotask.db.base import Outcome
from autotask.models import HISTOGRAM_BOUNDS_MS
from autotask.task import DONE, ERROR, WAITING
from autotask.worker import stats as stats_module
from autotask.worker.stats import TaskStatsBuffer

MINUTE = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)


def task(due, queue="default"):
    return SimpleNamespace(queue=queue, scheduled_at=due)


def outcome(status):
    return Outcome(id=1, status=status, finished_at=None)


def test_a_task_lands_in_its_minute_and_buckets():
    buffer = TaskStatsBuffer()
    started = MINUTE.timestamp() + 10
    buffer.add(task(MINUTE), outcome(DONE), 0.04, started)  # picked up after 10 s, ran 40 ms
    buffer.add(task(MINUTE + timedelta(seconds=10)), outcome(DONE), 0.005, started)  # 0 ms, 5 ms: "<= 5"
    minutes, totals = buffer.to_write()
    [(key, figures)] = minutes.items()
    assert key == (MINUTE, "default", "done")
    assert figures["count"] == 2
    assert figures["pickup_ms_sum"] == pytest.approx(10_000)
    assert figures["run_ms_sum"] == pytest.approx(45)
    assert figures["run_b0"] == 1 and figures["run_b3"] == 1  # (0, 5] and (25, 50] ms
    assert figures["pickup_b0"] == 1 and figures[f"pickup_b{HISTOGRAM_BOUNDS_MS.index(10_000)}"] == 1
    assert totals == {("default", "done"): figures}


def test_outcomes_and_queues_are_kept_apart():
    buffer = TaskStatsBuffer()
    started = MINUTE.timestamp()
    buffer.add(task(MINUTE), outcome(ERROR), 0.1, started)
    buffer.add(task(MINUTE, "mail"), outcome(WAITING), 0.1, started)  # a retry
    buffer.add(task(MINUTE), outcome(DONE), 61.0, started)  # counted in the minute it finished
    minutes, totals = buffer.to_write()
    assert set(minutes) == {
        (MINUTE, "default", "error"),
        (MINUTE, "mail", "retried"),
        (MINUTE + timedelta(minutes=1), "default", "done"),
    }
    assert set(totals) == {("default", "error"), ("mail", "retried"), ("default", "done")}


def test_a_naive_or_text_due_time_from_the_claim():
    # SQLite's raw rows give naive UTC datetimes or text; the ORM's converters are skipped.
    buffer = TaskStatsBuffer()
    started = MINUTE.timestamp() + 2
    buffer.add(task("2026-12-04 12:30:00"), outcome(DONE), 0.0, started)
    buffer.add(task(MINUTE.replace(tzinfo=None)), outcome(DONE), 0.0, started)
    _, totals = buffer.to_write()
    assert totals[("default", "done")]["pickup_ms_sum"] == pytest.approx(4_000)


def test_a_write_keeps_the_current_minute_whole_and_forgets_the_totals(monkeypatch):
    buffer = TaskStatsBuffer()
    buffer.add(task(MINUTE), outcome(DONE), 0.0, MINUTE.timestamp())
    buffer.add(task(MINUTE), outcome(DONE), 0.0, MINUTE.timestamp() + 60)
    assert not buffer.due() and buffer.seconds_to_write() > 0
    monkeypatch.setattr(stats_module.time, "monotonic", lambda: buffer.next_write)
    assert buffer.due() and buffer.seconds_to_write() == 0
    buffer.written(now_wall=MINUTE.timestamp() + 61)
    assert buffer.changed == set() and buffer.to_write() == ({}, {})
    assert buffer.seconds_to_write() == float("inf")
    assert [key[0] for key in buffer.minutes] == [int(MINUTE.timestamp() // 60) + 1]  # the past minute: gone
    # The current minute's row is rewritten whole by the next write: its figures stay;
    # the totals get only what came since the last write.
    buffer.add(task(MINUTE), outcome(DONE), 0.0, MINUTE.timestamp() + 62)
    minutes, totals = buffer.to_write()
    assert [figures["count"] for figures in minutes.values()] == [2]
    assert totals[("default", "done")]["count"] == 1
    assert totals[("default", "done")]["run_b0"] == 1


def test_a_failed_write_is_written_again_whole():
    buffer = TaskStatsBuffer()
    buffer.add(task(MINUTE), outcome(DONE), 0.0, MINUTE.timestamp())
    first = buffer.to_write()
    buffer.retry_later()  # the write failed: nothing is remembered as written
    buffer.add(task(MINUTE), outcome(DONE), 0.0, MINUTE.timestamp() + 1)
    minutes, totals = buffer.to_write()
    assert first[1][("default", "done")]["count"] == 1
    assert totals[("default", "done")]["count"] == 2
    assert [figures["count"] for figures in minutes.values()] == [2]


@pytest.mark.parametrize("value", [3600, -1, "2d", None, float("inf"), True])
def test_a_bad_stats_keep_is_refused_when_read(settings, value):
    settings.AUTOTASK_STATS_KEEP = value
    with pytest.raises(ImproperlyConfigured, match=r"AUTOTASK_STATS_KEEP must be a number of seconds >= 8"):
        getattr(conf, "STATS_KEEP")  # noqa: B009 - read it as the workers do


def test_without_use_tz_a_naive_due_time_is_in_the_default_time_zone(settings):
    settings.USE_TZ = False
    settings.TIME_ZONE = "Europe/Paris"  # UTC+1 in December
    buffer = TaskStatsBuffer()
    buffer.add(task(datetime(2026, 12, 4, 13, 30)), outcome(DONE), 0.0, MINUTE.timestamp() + 3)
    _, totals = buffer.to_write()
    assert totals[("default", "done")]["pickup_ms_sum"] == pytest.approx(3_000)
