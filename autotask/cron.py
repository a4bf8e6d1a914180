"""Cron schedules: both field orders parsed into one immutable schedule, and its next run.

Two syntaxes, never guessed for each other:

* the standard 5-field order ``minute hour day-of-month month day-of-week``
  (:meth:`CronExpression.parse`): ``*``, lists, ranges, steps (``*/15``,
  ``1-30/5``, ``5/15`` = ``5-59/15``), month names ``JAN``-``DEC`` and day
  names ``SUN``-``SAT`` (case-insensitive), day-of-week 0 or 7 = Sunday, and
  the macros ``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
  ``@daily``/``@midnight``, ``@hourly``;
* the 2016 ``autotask`` order ``minutes hours dow months dom`` with day-of-week
  0 = Monday ... 6 = Sunday, integers, ``*``, ``,`` and ``-`` only, or the same
  as keyword lists (:meth:`CronExpression.from_legacy`).

Day-of-month and day-of-week combine as crontab(5) says: when both are
restricted -- in the standard syntax "restricted" means the field does not
start with ``*``; in the legacy syntax it means the field or list is given --
a day matches when *either* matches; otherwise both must match. (So
``0 0 */2 * MON`` means odd days that are Mondays, as in Vixie/Debian cron and
cronsim; croniter differs here.)

Times are evaluated as wall-clock time in a time zone. A wall time that a
spring-forward transition skips runs once, at the first instant after the gap
(``02:30`` in a ``02:00``->``03:00`` gap runs at ``03:00``); a wall time that a
fall-back transition repeats runs once, at its first occurrence (``fold=0``).
Every run falls on a whole minute.

Why no cron library underneath: cronsim 2.8 (one small file, actively kept)
and croniter 7.0 (about three times the size, now kept by pallets-eco) were
both checked against these rules, and neither meets them. Both walk absolute time for expressions
with a ``*`` in the minute or hour field, so ``30 * * * *`` skips 02:30 on
spring-forward and runs twice on fall-back, and ``15 * * * *`` in
Australia/Lord_Howe's 30-minute gap is dropped; croniter also runs fixed-time
jobs (``30 2 * * *``) twice on fall-back. Their parsers do not fit either:
neither knows the legacy order, cronsim accepts extensions we do not promise
(``L``, ``#``, ``W``, a seconds field), its messages do not name the value, it
only partly detects expressions that can never fire (it stops iterating
after 50 years instead). Using one would therefore have meant our own parser, our own
DST mapping *and* a second parser of a re-rendered string just to walk a
calendar, which with the fields already held as sets is a few lines
(:meth:`CronExpression._next_wall`). So this module is self-contained; the
tests use cronsim as an independent oracle for the calendar walk (in UTC,
where the DST rules do not come into play) and a minute-by-minute brute force
for the DST rules.
"""

from __future__ import annotations

import calendar
import dataclasses
import operator
import re
from bisect import bisect_left
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autotask.exceptions import InvalidTaskOptions

__all__ = [
    "CronExpression",
    "CronScheduler",
    "next_run",
    "resolve_timezone",
]

_MINUTE = timedelta(minutes=1)
# The Gregorian calendar repeats every 400 years, so a search that finds no
# run in that span never will (construction already rejects such schedules).
_SEARCH_YEARS = 400
# Most days per month in any year (February counted in a leap year).
_MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NUMBER = re.compile(r"[0-9]+\Z")
_LEGACY_FIELD = re.compile(r"[0-9*,\-]+\Z")

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        start=1,
    )
}
_DAY_NAMES = {name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclasses.dataclass(frozen=True)
class _Field:
    """One cron field: its name in messages, its value range and its names."""

    name: str
    low: int
    high: int
    names: dict = dataclasses.field(default_factory=dict)
    hint: str = ""  # appended to out-of-range messages


_MINUTE_FIELD = _Field("minute", 0, 59)
_HOUR_FIELD = _Field("hour", 0, 23)
_DOM_FIELD = _Field("day-of-month", 1, 31)
_MONTH_FIELD = _Field("month", 1, 12, _MONTH_NAMES)
_DOW_FIELD = _Field("day-of-week", 0, 7, _DAY_NAMES)  # 7 is Sunday again
_STANDARD_FIELDS = (_MINUTE_FIELD, _HOUR_FIELD, _DOM_FIELD, _MONTH_FIELD, _DOW_FIELD)

# The original's keyword names and order: minutes hours dow months dom.
_LEGACY_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("dow", 0, 6, hint=" (legacy numbering: 0 = Monday ... 6 = Sunday)"),
    _Field("months", 1, 12),
    _Field("dom", 1, 31),
)

_FULL_DOM = frozenset(range(1, 32))
_FULL_DOW = frozenset(range(7))


def _fail(source, message) -> NoReturn:
    raise InvalidTaskOptions(f"invalid cron schedule {source}: {message}")


# -- parsing ------------------------------------------------------------------------------


def _parse_value(token, field, source):
    """Return the number a single value token stands for (a name or digits)."""
    if field.names and token.upper() in field.names:
        return field.names[token.upper()]
    if not _NUMBER.match(token):
        if not token:
            _fail(source, f"{field.name} has a missing value")
        if field.names:
            names = list(field.names)
            first, last = names[0], names[-1]
            _fail(
                source,
                f"{field.name} value {token!r} is neither a number "
                f"({field.low}-{field.high}) nor a name ({first}-{last})",
            )
        _fail(source, f"{field.name} value {token!r} is not a number")
    return _check_range(int(token), field, source)


def _check_range(value, field, source):
    """Return ``value`` if the field allows it."""
    if not field.low <= value <= field.high:
        limits = f"{field.low}-{field.high}{field.hint}"
        _fail(source, f"{field.name} value {value} is out of range {limits}")
    return value


def _parse_item(item, field, source, legacy):
    """Return the set of numbers of one list item: ``*``, ``a``, ``a-b``, with ``/step``."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if legacy:
            _fail(source, f"{field.name} {item!r}: steps ('/') are not part of the legacy syntax")
        if not _NUMBER.match(step_text):
            _fail(source, f"{field.name} step {step_text!r} in {item!r} is not a number")
        step = int(step_text)
        if step == 0:
            _fail(source, f"{field.name} step 0 in {item!r} is not allowed")
    if base == "*":
        low, high = field.low, field.high
    elif "-" in base:
        start, _, end = base.partition("-")
        if not start or not end:
            _fail(source, f"{field.name} range {base!r} is incomplete")
        low = _parse_value(start, field, source)
        high = _parse_value(end, field, source)
        if field is _DOW_FIELD and high == 0 and low > 0:
            high = 7  # "FRI-SUN", "5-0": Sunday closes the week
        if high < low:
            _fail(source, f"{field.name} range {base!r} is reversed")
    else:
        low = _parse_value(base, field, source)
        # "a/step" is "a-<last>/step" (as in cronie, cronsim and croniter).
        high = field.high if slash else low
    return range(low, high + 1, step)


def _parse_field(text, field, source, legacy=False):
    """Return ``(values, restricted)`` for one field's text."""
    values = set()
    for item in text.split(","):
        if not item:
            _fail(source, f"{field.name} {text!r} has an empty list item")
        values.update(_parse_item(item, field, source, legacy))
    return values, not text.startswith("*")


def _legacy_list(value, field):
    """Return ``(values, restricted)`` for one legacy keyword list (None means ``*``)."""
    if value is None:
        return set(range(field.low, field.high + 1)), False
    source = f"{field.name}={value!r}"
    if isinstance(value, (str, bytes)):
        _fail(source, f"{field.name} must be a list of integers; pass a string as crontab=")
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        _fail(source, f"{field.name} must be a list of integers or None")
    if not items:
        _fail(source, f"{field.name} is empty, so it would never run; use None for every value")
    values = set()
    for item in items:
        if isinstance(item, bool):
            _fail(source, f"{field.name} value {item!r} is a bool, not an integer")
        try:
            number = operator.index(item)
        except TypeError:
            _fail(source, f"{field.name} value {item!r} is not an integer")
        values.add(_check_range(number, field, source))
    return values, True


def _legacy_to_standard_dow(values):
    """Map the original's day-of-week numbers (0 = Monday) to cron's (0 = Sunday)."""
    return {(value + 1) % 7 for value in values}


# -- rendering ----------------------------------------------------------------------------


def _render_list(values):
    """Render sorted numbers as a comma list, runs of three or more as ``a-b``."""
    parts = []
    ordered = sorted(values)
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start >= 2:
            parts.append(f"{start}-{previous}")
        else:
            parts.extend(str(number) for number in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _render_plain(values, low, high):
    """Render a minute, hour or month set: ``*``, ``*/step`` for an even split, or a list."""
    span = high - low + 1
    if len(values) == span:
        return "*"
    for step in range(2, span):
        if span % step == 0 and values == set(range(low, high + 1, step)):
            return f"*/{step}"
    return _render_list(values)


def _star_steps(low, high, fold):
    """Yield ``(step, values)`` for ``*/step`` over a field, ending with the one giving {low}."""
    for step in range(2, high - low + 2):
        values = {value % fold for value in range(low, high + 1, step)}
        yield step, values
        if len(values) == 1:
            return


def _pure_star_step(values, low, high, fold):
    """Return ``s`` when ``values`` is exactly ``*/s`` of the field, else None."""
    for step, stepped in _star_steps(low, high, fold):
        if stepped == values:
            return step
    return None


def _render_unrestricted(values, low, high, fold):
    """Render a partial day set that must start with ``*`` (AND semantics): ``*/s[,list]``.

    Only sets holding ``low`` can be written so; the last ``*/s`` step gives ``{low}``.
    """
    step = _pure_star_step(values, low, high, fold)
    if step is not None:
        return f"*/{step}"
    *_, (single, _) = _star_steps(low, high, fold)
    return f"*/{single}," + _render_list(values - {low})


# -- the schedule -------------------------------------------------------------------------


def _check_timezone_name(name):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTaskOptions(f"unknown time zone {name!r}") from None


def resolve_timezone(tz):
    """Return a tzinfo for None (UTC), a zone name, a zoneinfo/pytz zone or any tzinfo."""
    if tz is None:
        return UTC
    if isinstance(tz, str):
        name = tz.strip()
        if not name:
            raise InvalidTaskOptions("time zone name is empty")
        return _check_timezone_name(name)
    zone = getattr(tz, "zone", None)
    if isinstance(zone, str) and hasattr(tz, "localize"):
        # A pytz zone: its tzinfo methods are only right after localize(), so use the
        # same zone through zoneinfo (pytz itself is not needed for this).
        return _check_timezone_name(zone)
    if isinstance(tz, tzinfo):
        return tz
    raise InvalidTaskOptions(
        f"time zone must be a name, a zoneinfo/pytz zone or a tzinfo, not {type(tz).__name__}"
    )


def _wall_to_utc(wall, tz):
    """Return the UTC instant a naive local wall time runs at, by the DST rules above."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first of a repeated wall time
    # Skipped by a gap: run at the first instant after it. fold=0 reads the wall time with
    # the offset before the gap, fold=1 with the one after, so the transition lies between.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, other), max(first, other)
    if low == high:  # a tzinfo without PEP 495 fold support: nothing better to do
        return first
    # Binary search the first whole minute whose wall time is past ``wall``.
    below, above = 0, (high - low) // _MINUTE
    while above - below > 1:
        middle = (below + above) // 2
        if (low + middle * _MINUTE).astimezone(tz).replace(tzinfo=None) > wall:
            above = middle
        else:
            below = middle
    return low + above * _MINUTE


@dataclasses.dataclass(frozen=True)
class CronExpression:
    """An immutable cron schedule, held as sets in standard numbering (day-of-week 0 = Sunday).

    Build it with :meth:`parse` or :meth:`from_legacy`. The sets and flags are normalised,
    so equal schedules compare equal and share :attr:`expression`.
    """

    minutes: frozenset
    hours: frozenset
    days_of_month: frozenset
    months: frozenset
    days_of_week: frozenset
    dom_restricted: bool
    dow_restricted: bool
    expression: str = dataclasses.field(init=False, compare=False)
    _source: str = dataclasses.field(default="", repr=False, compare=False)

    def __post_init__(self):
        source = self._source or "(sets)"
        fields = {
            "minutes": (self.minutes, _MINUTE_FIELD),
            "hours": (self.hours, _HOUR_FIELD),
            "days_of_month": (self.days_of_month, _DOM_FIELD),
            "months": (self.months, _MONTH_FIELD),
            "days_of_week": (self.days_of_week, _DOW_FIELD),
        }
        for attribute, (values, field) in fields.items():
            values = frozenset(values)
            if attribute == "days_of_week":
                values = frozenset(value % 7 for value in values)
            if not values:
                _fail(source, f"{field.name} matches nothing")
            for value in values:
                _check_range(value, field, source)
            object.__setattr__(self, attribute, values)
        self._normalise_days(source)
        self._check_can_fire(source)
        object.__setattr__(self, "expression", self._render())
        # Sorted copies for the calendar walk.
        object.__setattr__(self, "_minute_list", sorted(self.minutes))
        object.__setattr__(self, "_hour_list", sorted(self.hours))
        object.__setattr__(self, "_month_list", sorted(self.months))

    def _normalise_days(self, source):
        """Rewrite the day fields so that one schedule has one form (and one expression)."""
        dom, dow = self.days_of_month, self.days_of_week
        dom_restricted, dow_restricted = bool(self.dom_restricted), bool(self.dow_restricted)
        if dom_restricted and dow_restricted:
            if dom == _FULL_DOM or dow == _FULL_DOW:  # either side matches every day
                dom, dow, dom_restricted, dow_restricted = _FULL_DOM, _FULL_DOW, False, False
        else:
            dom_partial, dow_partial = dom != _FULL_DOM, dow != _FULL_DOW
            if dom_partial and dow_partial:
                # AND of two partial sets: one side must be written starting with "*",
                # which can only express sets holding the field's first value. Pick the
                # side by the sets alone (a pure "*/s" first) so the form is canonical.
                if _pure_star_step(dom, 1, 31, 32) is not None:
                    dom_restricted, dow_restricted = False, True
                elif _pure_star_step(dow, 0, 7, 7) is not None:
                    dom_restricted, dow_restricted = True, False
                elif 1 in dom:
                    dom_restricted, dow_restricted = False, True
                elif 0 in dow:
                    dom_restricted, dow_restricted = True, False
                else:
                    _fail(source, "day-of-month and day-of-week cannot be combined with AND")
            else:
                dom_restricted, dow_restricted = dom_partial, dow_partial
        object.__setattr__(self, "days_of_month", dom)
        object.__setattr__(self, "days_of_week", dow)
        object.__setattr__(self, "dom_restricted", dom_restricted)
        object.__setattr__(self, "dow_restricted", dow_restricted)

    def _check_can_fire(self, source):
        """Reject a schedule whose day-of-month never occurs in its months."""
        if self.dom_restricted and self.dow_restricted:
            return  # any weekday occurs every month
        # Every (month, day) that exists recurs on each weekday within a few decades.
        if any(day <= _MAX_DAYS[month] for month in self.months for day in self.days_of_month):
            return
        days = _render_list(self.days_of_month)
        months = _render_list(self.months)
        _fail(
            source,
            f"day-of-month (dom) {days} never occurs in month(s) {months}, so it never runs",
        )

    def _render(self):
        if self.dom_restricted or self.days_of_month == _FULL_DOM:
            dom = "*" if not self.dom_restricted else _render_list(self.days_of_month)
        else:
            dom = _render_unrestricted(self.days_of_month, 1, 31, 32)
        if self.dow_restricted or self.days_of_week == _FULL_DOW:
            dow = "*" if not self.dow_restricted else _render_list(self.days_of_week)
        else:
            dow = _render_unrestricted(self.days_of_week, 0, 7, 7)
        minute = _render_plain(self.minutes, 0, 59)
        hour = _render_plain(self.hours, 0, 23)
        month = _render_plain(self.months, 1, 12)
        return f"{minute} {hour} {dom} {month} {dow}"

    def __str__(self):
        return self.expression

    def __repr__(self):
        return f"CronExpression({self.expression!r})"

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def parse(cls, expr):
        """Parse a standard ``minute hour day-of-month month day-of-week`` expression."""
        if isinstance(expr, CronExpression):
            return expr
        if not isinstance(expr, str):
            raise InvalidTaskOptions(f"cron expression must be a string, not {type(expr).__name__}")
        source = repr(expr)
        text = expr.strip()
        if text.startswith("@"):
            if text.lower() not in _MACROS:
                _fail(source, f"unknown macro {text!r} (known: {', '.join(_MACROS)})")
            text = _MACROS[text.lower()]
        parts = text.split()
        if len(parts) != 5:
            _fail(
                source,
                f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}",
            )
        parsed = [
            _parse_field(part, field, source) for part, field in zip(parts, _STANDARD_FIELDS, strict=True)
        ]
        (minutes, _), (hours, _), (dom, dom_r), (months, _), (dow, dow_r) = parsed
        return cls(minutes, hours, dom, months, dow, dom_r, dow_r, _source=source)

    @classmethod
    def from_legacy(cls, crontab=None, minutes=None, hours=None, dow=None, months=None, dom=None):
        """Build from the original's ``minutes hours dow months dom`` string or lists.

        ``dow`` counts 0 = Monday ... 6 = Sunday. When ``crontab`` is given the lists
        are ignored, as in the original.
        """
        if crontab is not None:
            parsed = cls._parse_legacy_string(crontab)
            source = f"crontab={crontab!r}"
        else:
            values = (minutes, hours, dow, months, dom)
            parsed = [_legacy_list(value, field) for value, field in zip(values, _LEGACY_FIELDS, strict=True)]
            source = (
                ", ".join(
                    f"{field.name}={value!r}"
                    for value, field in zip(values, _LEGACY_FIELDS, strict=True)
                    if value is not None
                )
                or "(every minute)"
            )
        (minute_set, _), (hour_set, _), (dow_set, dow_r), (month_set, _), (dom_set, dom_r) = parsed
        return cls(
            minute_set,
            hour_set,
            dom_set,
            month_set,
            _legacy_to_standard_dow(dow_set),
            dom_r,
            dow_r,
            _source=source,
        )

    @staticmethod
    def _parse_legacy_string(crontab):
        if not isinstance(crontab, str):
            raise InvalidTaskOptions(f"legacy crontab must be a string, not {type(crontab).__name__}")
        source = f"crontab={crontab!r}"
        parts = crontab.split()
        if len(parts) != 5:
            _fail(
                source,
                f"expected 5 fields in the legacy order (minutes hours dow months dom), got {len(parts)}",
            )
        parsed = []
        for part, field in zip(parts, _LEGACY_FIELDS, strict=True):
            if not _LEGACY_FIELD.match(part):
                _fail(
                    source,
                    f"{field.name} {part!r}: the legacy syntax allows only integers, "
                    f"'*', ',' and '-' (use cron= for the standard syntax)",
                )
            parsed.append(_parse_field(part, field, source, legacy=True))
        return parsed

    # -- evaluation -----------------------------------------------------------------------

    def _day_matches(self, weekday, day):
        """Tell whether a day matches, given its cron weekday (0 = Sunday) and day of month."""
        dom_ok = day in self.days_of_month
        dow_ok = weekday in self.days_of_week
        if self.dom_restricted and self.dow_restricted:
            return dom_ok or dow_ok
        return dom_ok and dow_ok

    def matches(self, local):
        """Tell whether a naive local wall-clock time falls in a scheduled minute."""
        if local.tzinfo is not None:
            raise ValueError("matches() takes a naive local wall-clock time")
        return (
            local.minute in self.minutes
            and local.hour in self.hours
            and local.month in self.months
            and self._day_matches(local.isoweekday() % 7, local.day)
        )

    def _first_time(self, hour, minute):
        """Return the first scheduled ``(hour, minute)`` at or after the given one, or None."""
        hours, minutes = self._hour_list, self._minute_list
        index = bisect_left(hours, hour)
        if index < len(hours) and hours[index] == hour:
            minute_index = bisect_left(minutes, minute)
            if minute_index < len(minutes):
                return hour, minutes[minute_index]
            index += 1
        if index < len(hours):
            return hours[index], minutes[0]
        return None

    def _next_wall(self, start):
        """Return the first matching naive wall-clock minute at or after ``start``."""
        year, month, day = start.year, start.month, start.day
        hour, minute = start.hour, start.minute
        months = self._month_list
        while year <= start.year + _SEARCH_YEARS:
            if month not in self.months:
                index = bisect_left(months, month)
                if index == len(months):
                    year, month = year + 1, months[0]
                else:
                    month = months[index]
                day, hour, minute = 1, 0, 0
                continue
            first_weekday, days_in_month = calendar.monthrange(year, month)  # Monday = 0
            while day <= days_in_month:
                if self._day_matches((first_weekday + day) % 7, day):
                    found = self._first_time(hour, minute)
                    if found is not None:
                        return datetime(year, month, day, *found)
                day, hour, minute = day + 1, 0, 0
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            day, hour, minute = 1, 0, 0
        raise ValueError(f"{self!r} has no run within {_SEARCH_YEARS} years of {start}")

    def next_after(self, after, tz=None):
        """Return the first run strictly after the aware ``after``, in UTC, evaluated in ``tz``."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"next_after() needs an aware datetime, got naive {after!r}")
        zone = resolve_timezone(tz)
        after_utc = after.astimezone(UTC)
        # Wall-clock runs map to instants monotonically, and every run before the wall
        # minute holding ``after`` is at or before ``after``: start the walk there.
        wall = after_utc.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
        while True:
            wall = self._next_wall(wall)
            instant = _wall_to_utc(wall, zone)
            if instant > after_utc:
                return instant
            # A run in a repeated hour already had its first occurrence, or a gap run
            # falls on the instant of ``after``: move on.
            wall += _MINUTE


def next_run(expression, after, tz=None):
    """Return the first run of ``expression`` strictly after ``after``, in UTC.

    ``expression`` is a :class:`CronExpression` or a standard cron string; ``tz`` is where
    the wall-clock fields are read (None: UTC; callers pass ``settings.TIME_ZONE``).
    """
    return CronExpression.parse(expression).next_after(after, tz)


class CronScheduler:
    """The original's scheduler, kept for code that used it (legacy syntax, UTC by default).

    ``get_next_schedule()`` returns the first run after ``last_schedule`` (default: now).
    An aware ``last_schedule`` gives an aware UTC result; a naive one is read as UTC and
    gives a naive UTC result.
    """

    def __init__(
        self,
        last_schedule=None,
        crontab=None,
        minutes=None,
        hours=None,
        dow=None,
        months=None,
        dom=None,
        *,
        tz=None,
    ):
        self.last_schedule = last_schedule
        self.tz = resolve_timezone(tz)
        self.expression = CronExpression.from_legacy(
            crontab=crontab, minutes=minutes, hours=hours, dow=dow, months=months, dom=dom
        )

    def get_next_schedule(self):
        """Return the first run after ``last_schedule`` (or after now)."""
        last = self.last_schedule
        if last is None:
            return self.expression.next_after(datetime.now(UTC), self.tz)
        if last.tzinfo is None:
            result = self.expression.next_after(last.replace(tzinfo=UTC), self.tz)
            return result.replace(tzinfo=None)
        return self.expression.next_after(last, self.tz)
