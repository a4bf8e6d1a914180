"""A slow, obviously right reference for cron runs: walk UTC minutes one by one.

It shares no code with ``autotask.cron``. A wall-clock minute matches when each of its
fields is in the schedule's sets (day-of-month/day-of-week: OR when both are restricted,
else AND). A UTC minute is a run when its wall time matches and is the first occurrence
of that wall time (``fold == 0``), or when it is the first minute after a gap in wall
time and some skipped wall minute matches.
"""

import dataclasses
from datetime import UTC, datetime, timedelta

MINUTE = timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class Sets:
    """A schedule as plain sets, standard numbering (day-of-week 0 = Sunday)."""

    minutes: frozenset
    hours: frozenset
    days_of_month: frozenset
    months: frozenset
    days_of_week: frozenset
    day_or: bool

    def matches(self, wall):
        """Tell whether a naive wall-clock minute matches."""
        if wall.minute not in self.minutes or wall.hour not in self.hours:
            return False
        if wall.month not in self.months:
            return False
        dom_ok = wall.day in self.days_of_month
        dow_ok = wall.isoweekday() % 7 in self.days_of_week
        return (dom_ok or dow_ok) if self.day_or else (dom_ok and dow_ok)


def _floor_minute(moment):
    return moment.replace(second=0, microsecond=0)


def brute_runs(sets, after, tz, count, limit_minutes):
    """Return up to ``count`` runs strictly after ``after`` within ``limit_minutes`` (UTC)."""
    runs = []
    moment = _floor_minute(after.astimezone(UTC)) + MINUTE
    previous_wall = (moment - MINUTE).astimezone(tz).replace(tzinfo=None)
    for _ in range(limit_minutes):
        local = moment.astimezone(tz)
        wall = local.replace(tzinfo=None)
        fire = local.fold == 0 and sets.matches(wall)
        if not fire and wall - previous_wall > MINUTE:
            skipped = previous_wall + MINUTE
            while skipped < wall and not fire:
                fire = sets.matches(skipped)
                skipped += MINUTE
        if fire:
            runs.append(moment)
            if len(runs) == count:
                break
        previous_wall = wall
        moment += MINUTE
    return runs


def window_end(after, limit_minutes):
    """Return the last UTC minute :func:`brute_runs` looked at."""
    return _floor_minute(after.astimezone(UTC)) + MINUTE * limit_minutes


def transitions(tz, first_year, last_year):
    """Return the UTC instants (whole minutes) where ``tz`` changes its UTC offset."""
    found = []
    moment = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    offset = moment.astimezone(tz).utcoffset()
    while moment < end:
        following = moment + step
        following_offset = following.astimezone(tz).utcoffset()
        if following_offset != offset:
            low, high = moment, following  # offset changes in (low, high]
            while high - low > MINUTE:
                middle = _floor_minute(low + (high - low) / 2)
                if middle <= low:
                    middle = low + MINUTE
                if middle.astimezone(tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
            offset = following_offset
        moment = following
    return found
