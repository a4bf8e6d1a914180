"""autotask.cron: parsing both syntaxes, validation, time zones and DST, the legacy shim.

Pure tests: no database, no Django settings.
"""

import dataclasses
import functools
import random
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from autotask.cron import CronExpression, CronScheduler, next_run, resolve_timezone
from autotask.exceptions import InvalidTaskOptions
from tests.unit.cron_bruteforce import Sets, brute_runs, transitions, window_end

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",  # +05:30, no DST
    "America/Sao_Paulo",  # DST at midnight until 2019
    "Pacific/Chatham",  # +12:45/+13:45
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]
MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def examples(count):
    """Hypothesis settings: ``count`` examples, no per-example deadline."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(zone, *args, fold=0):
    return datetime(*args, tzinfo=ZoneInfo(zone) if isinstance(zone, str) else zone, fold=fold)


def runs(expression, after, tz, count):
    """Return ``count`` consecutive runs after ``after``."""
    result = []
    for _ in range(count):
        after = expression.next_after(after, tz)
        result.append(after)
    return result


def wall_times(moments, tz):
    return [moment.astimezone(tz).strftime("%Y-%m-%d %H:%M%z") for moment in moments]


# -- generated expressions ----------------------------------------------------------------


@dataclasses.dataclass
class FieldSpec:
    standard: str  # text in the standard syntax
    legacy: str | None  # text in the legacy syntax (its numbering), None if it has none
    legacy_list: list | None  # keyword list for from_legacy (None means "*")
    values: frozenset  # standard numbering
    restricted: bool


@dataclasses.dataclass
class ExprSpec:
    fields: list  # minute, hour, day-of-month, month, day-of-week

    @property
    def standard(self):
        return " ".join(field.standard for field in self.fields)

    @property
    def legacy(self):
        minute, hour, dom, month, dow = self.fields
        return " ".join(field.legacy for field in (minute, hour, dow, month, dom))

    @property
    def legacy_kwargs(self):
        minute, hour, dom, month, dow = self.fields
        return {
            "minutes": minute.legacy_list,
            "hours": hour.legacy_list,
            "dow": dow.legacy_list,
            "months": month.legacy_list,
            "dom": dom.legacy_list,
        }

    @property
    def sets(self):
        minute, hour, dom, month, dow = self.fields
        return Sets(
            minute.values,
            hour.values,
            dom.values,
            month.values,
            dow.values,
            day_or=dom.restricted and dow.restricted,
        )

    @property
    def can_fire(self):
        sets = self.sets
        if sets.day_or:
            return True
        return any(d <= MAX_DAYS[m] for m in sets.months for d in sets.days_of_month)


# (low, high) of each standard field; day-of-week also takes 7 for Sunday.
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _name(kind, value, rng):
    """Render a month or day-of-week value as a number or, sometimes, a name in any case."""
    case = rng.choice([str.upper, str.lower, str.title])
    if kind == 3 and rng.random() < 0.5:
        return case(MONTH_NAMES[value - 1])
    if kind == 4 and value < 7 and rng.random() < 0.5:
        return case(DAY_NAMES[value])
    return str(value)


def _to_legacy(kind, values):
    """Map standard values of a field to the legacy numbering (day-of-week 0 = Monday)."""
    if kind == 4:
        return [(value + 6) % 7 for value in values]
    return list(values)


# Strategies are built once: building them inside each draw makes generation crawl.
_COSMETIC = st.randoms(use_true_random=False)  # names, case, order, duplicates
_FORM = st.integers(0, 99)
_STEP = {
    kind: st.tuples(st.integers(1, high - low + 1), st.integers(0, 2), st.integers(low, high))
    for kind, (low, high) in enumerate(BOUNDS)
}
# (value, k): k > 30 makes the item a range of k - 30 more values.
_ITEMS = {
    (kind, size): st.lists(st.tuples(st.integers(low, high), st.integers(0, 40)), min_size=1, max_size=size)
    for kind, (low, high) in enumerate(BOUNDS)
    for size in range(1, 9)
}


@st.composite
def field_spec(draw, kind, star_weight, steps, max_items):
    low, high = BOUNDS[kind]
    fold = 7 if kind == 4 else high + 1
    weights = {"star": star_weight, "list": 4, "step": 2 if steps else 0}
    pick = draw(_FORM) * sum(weights.values()) // 100
    form = "star" if pick < weights["star"] else "list" if pick < star_weight + 4 else "step"
    if form == "star":
        full = frozenset(v % fold for v in range(low, high + 1))
        return FieldSpec("*", "*", None, full, False)
    if form == "step":
        step, shape, start = draw(_STEP[kind])
        if shape == 0:
            text, start, end, restricted = f"*/{step}", low, high, False
        elif shape == 1:
            text, end, restricted = f"{start}/{step}", high, True
        else:
            start = min(start, high - 1)  # "a-a/s": see test_single_value_range_with_step
            end = draw(st.integers(start + 1, high))
            text, restricted = f"{start}-{end}/{step}", True
        values = frozenset(v % fold for v in range(start, end + 1, step))
        return FieldSpec(text, None, None, values, restricted)
    # A list of single values and ranges; legacy numbers never use 7.
    items = draw(_ITEMS[kind, max_items])
    rng = draw(_COSMETIC)
    standard_items, legacy_items, values = [], [], set()
    for first, extent in items:
        if extent > 30:
            last = min(high, first + extent - 30)
            standard_items.append(f"{_name(kind, first, rng)}-{_name(kind, last, rng)}")
            covered = [v % fold for v in range(first, last + 1)]
        else:
            standard_items.append(_name(kind, first, rng))
            covered = [first % fold]
        values.update(covered)
        legacy = _to_legacy(kind, covered)
        if len(legacy) > 1 and kind != 4:
            legacy_items.append(f"{legacy[0]}-{legacy[-1]}")
        else:
            legacy_items.extend(str(v) for v in legacy)
    legacy_list = _to_legacy(kind, sorted(values))
    legacy_list += rng.choices(legacy_list, k=rng.randint(0, 2))  # duplicates are fine
    rng.shuffle(legacy_list)
    return FieldSpec(",".join(standard_items), ",".join(legacy_items), legacy_list, values, True)


def expressions(steps=True, dense=False):
    """Expressions as specs; ``dense`` ones mostly fire within a few days."""
    if dense:
        weights, sizes = [1, 1, 6, 8, 3], [8, 6, 4, 3, 3]
    else:
        weights, sizes = [1, 2, 2, 2, 2], [6, 4, 4, 3, 3]
    return st.builds(
        lambda *fields: ExprSpec(list(fields)),
        *(field_spec(kind, weights[kind], steps, sizes[kind]) for kind in range(5)),
    )


@functools.cache
def zone_transitions(name):
    return transitions(ZoneInfo(name), 2000, 2040)


@st.composite
def start_and_zone(draw):
    """A zone and an aware start time, often within hours of one of its transitions."""
    name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(name)
    nearby = zone_transitions(name)
    if nearby and draw(st.booleans()):
        moment = draw(st.sampled_from(nearby)) + timedelta(minutes=draw(st.integers(-240, 240)))
    else:
        moment = draw(st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31), timezones=st.just(UTC)))
    moment = moment.replace(
        second=draw(st.sampled_from([0, 0, 1, 59])), microsecond=draw(st.sampled_from([0, 1]))
    )
    # Hand it over in UTC or in the zone itself: the answer must not depend on that.
    return name, moment.astimezone(draw(st.sampled_from([UTC, zone])))


# -- properties ---------------------------------------------------------------------------


@examples(100)
@given(spec=expressions(dense=True), start=start_and_zone())
def test_next_after_agrees_with_brute_force(spec, start):
    name, after = start
    assume(spec.can_fire)
    expression = CronExpression.parse(spec.standard)
    limit = 3 * 24 * 60
    expected = brute_runs(spec.sets, after, ZoneInfo(name), 3, limit)
    got = runs(expression, after, name, 3)
    for index, moment in enumerate(got):
        assert moment.tzinfo is UTC
        assert moment.second == moment.microsecond == 0
        if index < len(expected):
            assert moment == expected[index], (spec.standard, name, after, got, expected)
        else:
            assert moment > window_end(after, limit), (spec.standard, name, after, got, expected)


def list_field(values, kind=0):
    """A restricted field listing ``values`` (standard numbering) in both syntaxes."""
    values = frozenset(values)
    legacy = _to_legacy(kind, sorted(values))
    text, legacy_text = (",".join(str(value) for value in group) for group in (sorted(values), legacy))
    return FieldSpec(text, legacy_text, legacy, values, True)


STAR_DAY_FIELDS = [
    FieldSpec("*", "*", None, frozenset(range(1, 32)), False),
    FieldSpec("*", "*", None, frozenset(range(1, 13)), False),
]


@st.composite
def around_a_transition(draw):
    """A zone, an expression firing in the wall hours a transition touches, and a start before it."""
    name = draw(st.sampled_from([name for name in ZONES if zone_transitions(name)]))
    zone = ZoneInfo(name)
    moment = draw(st.sampled_from(zone_transitions(name)))
    before = (moment - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None)
    after = moment.astimezone(zone).replace(tzinfo=None)
    touched = {before.hour, after.hour}
    wall = before
    while wall < after:  # the hours a gap skips
        wall += timedelta(minutes=1)
        touched.add(wall.hour)
    hours = draw(st.sets(st.sampled_from(sorted(touched)), min_size=1))
    hours |= draw(st.sets(st.integers(0, 23), max_size=2))
    minutes = draw(st.sets(st.integers(0, 59), min_size=1, max_size=6))
    if draw(st.booleans()):
        minutes |= {0}
    if draw(st.booleans()):
        dow = FieldSpec("*", "*", None, frozenset(range(7)), False)
    else:
        dow = list_field({before.isoweekday() % 7, after.isoweekday() % 7}, kind=4)
    spec = ExprSpec([list_field(minutes), list_field(hours), *STAR_DAY_FIELDS, dow])
    start = moment - timedelta(minutes=draw(st.integers(1, 300)), seconds=draw(st.integers(0, 59)))
    return spec, name, start


@examples(60)
@given(case=around_a_transition())
def test_dst_transitions_agree_with_brute_force(case):
    spec, name, after = case
    expected = brute_runs(spec.sets, after, ZoneInfo(name), 4, 2 * 24 * 60)
    for expression in (CronExpression.parse(spec.standard), CronExpression.from_legacy(spec.legacy)):
        assert runs(expression, after, name, len(expected)) == expected, (spec.standard, name, after)


@examples(40)
@given(spec=expressions(steps=False, dense=True), start=start_and_zone())
def test_legacy_forms_agree_with_brute_force(spec, start):
    name, after = start
    assume(spec.can_fire)
    limit = 2 * 24 * 60
    expected = brute_runs(spec.sets, after, ZoneInfo(name), 1, limit)
    for expression in (
        CronExpression.from_legacy(spec.legacy),
        CronExpression.from_legacy(**spec.legacy_kwargs),
    ):
        got = expression.next_after(after, name)
        if expected:
            assert got == expected[0], (spec.legacy, name, after)
        else:
            assert got > window_end(after, limit)


@examples(150)
@given(spec=expressions(steps=False))
def test_legacy_string_lists_and_standard_are_one_schedule(spec):
    if not spec.can_fire:
        for build in (
            lambda: CronExpression.parse(spec.standard),
            lambda: CronExpression.from_legacy(spec.legacy),
            lambda: CronExpression.from_legacy(**spec.legacy_kwargs),
        ):
            with pytest.raises(InvalidTaskOptions, match="never"):
                build()
        return
    standard = CronExpression.parse(spec.standard)
    from_string = CronExpression.from_legacy(spec.legacy)
    from_lists = CronExpression.from_legacy(**spec.legacy_kwargs)
    assert standard == from_string == from_lists
    assert standard.expression == from_string.expression == from_lists.expression
    assert hash(standard) == hash(from_lists)


@examples(150)
@given(spec=expressions())
def test_expression_is_canonical_and_round_trips(spec):
    assume(spec.can_fire)
    expression = CronExpression.parse(spec.standard)
    again = CronExpression.parse(expression.expression)
    assert again == expression
    assert again.expression == expression.expression
    sets = spec.sets
    assert expression.minutes == sets.minutes
    assert expression.hours == sets.hours
    assert expression.months == sets.months
    # The day fields may be normalised, but every day must match as the raw sets say.
    day = date(2024, 1, 1)
    for offset in range(0, 366, 3):
        moment = datetime.combine(day + timedelta(days=offset), datetime.min.time())
        moment = moment.replace(hour=min(sets.hours), minute=min(sets.minutes))
        assert expression.matches(moment) == sets.matches(moment), (spec.standard, moment)


@examples(150)
@given(
    spec=expressions(),
    start=st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31)),
)
def test_calendar_walk_agrees_with_cronsim_in_utc(spec, start):
    """cronsim (Vixie rules, no DST in UTC) is an independent oracle over long spans."""
    cronsim = pytest.importorskip("cronsim")
    assume(spec.can_fire)
    expression = CronExpression.parse(spec.standard)
    for text in (spec.standard, expression.expression):
        oracle = cronsim.CronSim(text, start)
        expected = [next(oracle) for _ in range(3)]
        got = runs(expression, start.replace(tzinfo=UTC), None, 3)
        assert [moment.replace(tzinfo=None) for moment in got] == expected, text


# -- fixed examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 31 * *", utc(2026, 1, 31), utc(2026, 3, 31)),
        ("0 0 31 * *", utc(2026, 3, 31, 0, 0, 1), utc(2026, 5, 31)),
        ("0 0 30 * *", utc(2026, 1, 30, 12), utc(2026, 3, 30)),
        ("0 0 29 2 *", utc(2025, 3, 1), utc(2028, 2, 29)),
        ("0 0 29 2 *", utc(2028, 2, 29), utc(2032, 2, 29)),
        ("0 0 29 2 *", utc(2096, 2, 29), utc(2104, 2, 29)),  # 2100 is no leap year
        ("0 0 1 1 *", utc(2026, 1, 1), utc(2027, 1, 1)),
        ("@yearly", utc(2026, 6, 1), utc(2027, 1, 1)),
        ("30 12 24 12 *", utc(2026, 12, 24, 12, 30), utc(2027, 12, 24, 12, 30)),
        ("0 0 1 3,6 *", utc(2026, 3, 15), utc(2026, 6, 1)),
        ("0 0 1 3,6 *", utc(2026, 7, 1), utc(2027, 3, 1)),
        ("5 * * * *", utc(2026, 1, 1, 10, 50), utc(2026, 1, 1, 11, 5)),
        ("5 * * * *", utc(2026, 12, 31, 23, 59), utc(2027, 1, 1, 0, 5)),
        ("* * * * *", utc(2026, 1, 1, 10, 0, 30), utc(2026, 1, 1, 10, 1)),
        ("* * * * *", utc(2026, 1, 1, 10, 0, 0, 1), utc(2026, 1, 1, 10, 1)),
        ("*/15 9-17 * * MON-FRI", utc(2026, 1, 2, 17, 45), utc(2026, 1, 5, 9)),
        ("0 9 * * MON", utc(2026, 1, 7), utc(2026, 1, 12, 9)),
        ("0 9 * * 1", utc(2026, 1, 12, 9), utc(2026, 1, 19, 9)),
        ("0 0 13 * FRI", utc(2026, 1, 1), utc(2026, 1, 2)),  # 13th OR Friday
        ("0 0 */2 * MON", utc(2026, 1, 1), utc(2026, 1, 5)),  # odd days AND Monday
    ],
)
def test_next_after_examples(expr, after, expected):
    assert CronExpression.parse(expr).next_after(after, UTC) == expected
    assert next_run(expr, after) == expected


def test_monday_only_in_both_syntaxes():
    forms = [
        CronExpression.from_legacy(minutes=[0], hours=[9], dow=[0]),
        CronExpression.from_legacy("0 9 0 * *"),
        CronExpression.parse("0 9 * * MON"),
        CronExpression.parse("0 9 * * 1"),
        CronExpression.parse("0 9 * * mon"),
    ]
    assert len({form.expression for form in forms}) == 1
    assert forms[0].days_of_week == frozenset({1})
    week = [datetime(2026, 1, 5 + offset, 9, 0) for offset in range(7)]  # Mon 5th .. Sun 11th
    for form in forms:
        assert [form.matches(day) for day in week] == [True] + [False] * 6
        # From Tuesday to Sunday the next run is the following Monday.
        for day in week[1:]:
            assert form.next_after(day.replace(tzinfo=UTC), UTC) == utc(2026, 1, 12, 9)


def test_sunday_is_0_and_7():
    sunday = CronExpression.parse("0 0 * * 0")
    assert sunday == CronExpression.parse("0 0 * * 7") == CronExpression.parse("0 0 * * SUN")
    assert sunday == CronExpression.from_legacy(dow=[6], minutes=[0], hours=[0])
    assert sunday.days_of_week == frozenset({0})
    assert CronExpression.parse("0 0 * * 5-7").days_of_week == frozenset({5, 6, 0})
    assert CronExpression.parse("0 0 * * FRI-SUN").days_of_week == frozenset({5, 6, 0})
    assert CronExpression.parse("0 0 * * */2").days_of_week == frozenset({0, 2, 4, 6})
    assert CronExpression.parse("0 0 * * 1-7") == CronExpression.parse("0 0 * * *")


def test_attributes_and_immutability():
    expression = CronExpression.parse("*/20 1,2 10-12 JUN * ")
    assert expression.minutes == frozenset({0, 20, 40})
    assert expression.hours == frozenset({1, 2})
    assert expression.days_of_month == frozenset({10, 11, 12})
    assert expression.months == frozenset({6})
    assert expression.days_of_week == frozenset(range(7))
    assert (expression.dom_restricted, expression.dow_restricted) == (True, False)
    assert expression.expression == "*/20 1,2 10-12 6 *"
    assert str(expression) == expression.expression
    assert repr(expression) == "CronExpression('*/20 1,2 10-12 6 *')"
    for attribute in ("minutes", "expression", "dom_restricted"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(expression, attribute, None)
    assert {expression: 1}[CronExpression.parse("0,20,40 1-2 10,11,12 6 *")] == 1
    assert CronExpression.parse(expression) is expression


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("* * * * *", "* * * * *"),
        ("0,15,30,45 * * * *", "*/15 * * * *"),
        ("0 0 1 */3 *", "0 0 1 */3 *"),
        ("0 0 1-31 * MON", "0 0 * * *"),  # both restricted, dom covers every day
        ("0 0 13 * 0-6", "0 0 * * *"),
        ("0 0 */2 * MON", "0 0 */2 * 1"),  # AND: odd days that are Mondays
        ("0 0 1,15 * */2", "0 0 1,15 * */2"),
        ("0 0 */1 * 1", "0 0 * * 1"),
        ("0 0 */2,4 * 1", "0 0 */31,3-5,7,9,11,13,15,17,19,21,23,25,27,29,31 * 1"),
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_canonical_expression(text, canonical):
    expression = CronExpression.parse(text)
    assert expression.expression == canonical
    assert CronExpression.parse(canonical) == expression


# -- the original README's examples -------------------------------------------------------


def test_readme_every_day_at_7_15_and_7_30():
    expression = CronExpression.from_legacy("15,30 7 * * *")
    assert expression == CronExpression.from_legacy(minutes=[30, 15], hours=[7])
    assert wall_times(runs(expression, utc(2026, 5, 1, 7, 20), UTC, 3), UTC) == [
        "2026-05-01 07:30+0000",
        "2026-05-02 07:15+0000",
        "2026-05-02 07:30+0000",
    ]


def test_readme_mondays_or_10th_to_15th_in_april_and_july():
    expression = CronExpression.from_legacy("* 9 0 4,7 10-15")
    assert expression == CronExpression.from_legacy(
        minutes=None, hours=[9], dow=[0], months=[7, 4], dom=[15, 14, 13, 12, 11, 10, 10]
    )
    assert expression.expression == "* 9 10-15 4,7 1"
    days = {
        (moment.month, moment.day)
        for moment in runs(expression, utc(2026, 1, 1), UTC, 60 * 20)
        if moment.year == 2026
    }
    april_mondays = {(4, 6), (4, 13), (4, 20), (4, 27)}
    july_mondays = {(7, 6), (7, 13), (7, 20), (7, 27)}
    tenth_to_15th = {(month, day) for month in (4, 7) for day in range(10, 16)}
    assert days == april_mondays | july_mondays | tenth_to_15th
    first = expression.next_after(utc(2026, 1, 1), UTC)
    assert first == utc(2026, 4, 6, 9, 0)
    assert expression.next_after(utc(2026, 4, 6, 9, 59), UTC) == utc(2026, 4, 10, 9, 0)
    assert expression.next_after(utc(2026, 7, 27, 9, 59), UTC) == utc(2027, 4, 5, 9, 0)


def test_readme_newsletter_mondays_at_7_30():
    forms = [
        CronExpression.from_legacy(crontab="30 7 0 * *"),
        CronExpression.from_legacy(minutes=[30], hours=[7], dow=[0]),
    ]
    for form in forms:
        assert form.expression == "30 7 * * 1"
        moments = runs(form, utc(2026, 1, 1), UTC, 3)
        assert moments == [utc(2026, 1, 5, 7, 30), utc(2026, 1, 12, 7, 30), utc(2026, 1, 19, 7, 30)]


def test_legacy_crontab_wins_over_lists():
    expression = CronExpression.from_legacy("0 12 * * *", minutes=[5], hours=["bad"])
    assert expression.expression == "0 12 * * *"


def test_legacy_lists_accept_any_int_sequence():
    assert CronExpression.from_legacy(minutes=range(0, 60, 20)).minutes == {0, 20, 40}
    assert CronExpression.from_legacy(minutes=(5, 5), hours={1}).expression == "5 1 * * *"
    assert CronExpression.from_legacy(hours=7, minutes=0).expression == "0 7 * * *"
    assert CronExpression.from_legacy().expression == "* * * * *"


def test_legacy_dom_and_dow_given_means_either():
    # README: "If both are set, then the allowed days complement each other".
    expression = CronExpression.from_legacy(minutes=[0], hours=[0], dow=[4], dom=[1])  # Fri | 1st
    assert expression.expression == "0 0 1 * 5"
    assert runs(expression, utc(2026, 4, 25), UTC, 3) == [
        utc(2026, 5, 1),  # a Friday and the 1st
        utc(2026, 5, 8),
        utc(2026, 5, 15),
    ]
    every_day = CronExpression.from_legacy(dow=list(range(7)), dom=[1])
    assert every_day.expression == "* * * * *"


# -- time zones and DST -------------------------------------------------------------------


def test_spring_forward_skipped_time_runs_once_after_the_gap():
    expression = CronExpression.parse("30 2 * * *")
    moments = runs(expression, local(BERLIN, 2026, 3, 28, 12), "Europe/Berlin", 3)
    assert wall_times(moments, BERLIN) == [
        "2026-03-29 03:00+0200",  # 02:30 does not exist that night
        "2026-03-30 02:30+0200",
        "2026-03-31 02:30+0200",
    ]
    assert moments[0] == utc(2026, 3, 29, 1, 0)
    legacy = CronExpression.from_legacy(minutes=[30], hours=[2])
    assert runs(legacy, local(BERLIN, 2026, 3, 28, 12), BERLIN, 3) == moments


def test_spring_forward_hourly_and_every_minute():
    after = local(BERLIN, 2026, 3, 29, 1, 0)
    hourly = runs(CronExpression.parse("30 * * * *"), after, BERLIN, 3)
    assert wall_times(hourly, BERLIN) == [
        "2026-03-29 01:30+0100",
        "2026-03-29 03:00+0200",  # the 02:30 run
        "2026-03-29 03:30+0200",
    ]
    # Every wall minute 02:00-02:59 lands on 03:00: one run there, not sixty.
    minutely = runs(CronExpression.parse("* * * * *"), local(BERLIN, 2026, 3, 29, 1, 58), BERLIN, 3)
    assert wall_times(minutely, BERLIN) == [
        "2026-03-29 01:59+0100",
        "2026-03-29 03:00+0200",
        "2026-03-29 03:01+0200",
    ]
    # A run at 02:00 and one at 03:00 fall on the same instant: it runs once.
    both = runs(CronExpression.parse("0 2,3 * * *"), after, BERLIN, 2)
    assert wall_times(both, BERLIN) == ["2026-03-29 03:00+0200", "2026-03-30 02:00+0200"]


def test_fall_back_repeated_time_runs_once():
    expression = CronExpression.parse("30 2 * * *")
    moments = runs(expression, local(BERLIN, 2026, 10, 24, 12), BERLIN, 3)
    assert wall_times(moments, BERLIN) == [
        "2026-10-25 02:30+0200",  # the first 02:30, not the second
        "2026-10-26 02:30+0100",
        "2026-10-27 02:30+0100",
    ]
    # Starting between the two 02:30s does not run the second one.
    second_hour = local(BERLIN, 2026, 10, 25, 2, 10, fold=1)
    assert expression.next_after(second_hour, BERLIN) == moments[1]


def test_fall_back_half_hourly():
    moments = runs(CronExpression.parse("*/30 * * * *"), local(BERLIN, 2026, 10, 25, 1, 0), BERLIN, 5)
    assert wall_times(moments, BERLIN) == [
        "2026-10-25 01:30+0200",
        "2026-10-25 02:00+0200",
        "2026-10-25 02:30+0200",
        "2026-10-25 03:00+0100",  # the repeated 02:00 and 02:30 are skipped
        "2026-10-25 03:30+0100",
    ]


def test_lord_howe_half_hour_gap():
    zone = ZoneInfo("Australia/Lord_Howe")  # 02:00 -> 02:30 on 2026-10-04
    moments = runs(CronExpression.parse("15 * * * *"), local(zone, 2026, 10, 4, 1), zone, 3)
    assert wall_times(moments, zone) == [
        "2026-10-04 01:15+1030",
        "2026-10-04 02:30+1100",
        "2026-10-04 03:15+1100",
    ]


def test_sao_paulo_midnight_gap():
    zone = ZoneInfo("America/Sao_Paulo")  # 2018-11-04 00:00 -> 01:00
    moments = runs(CronExpression.parse("0 0 * * *"), local(zone, 2018, 11, 3, 12), zone, 2)
    assert wall_times(moments, zone) == ["2018-11-04 01:00-0200", "2018-11-05 00:00-0200"]


def test_apia_skipped_day():
    zone = ZoneInfo("Pacific/Apia")  # 2011-12-30 did not happen
    moments = runs(CronExpression.parse("0 12 * * *"), local(zone, 2011, 12, 29, 13), zone, 2)
    assert wall_times(moments, zone) == ["2011-12-31 00:00+1400", "2011-12-31 12:00+1400"]


def test_after_in_any_zone_gives_the_same_answer():
    expression = CronExpression.parse("0 9 * * *")
    after = utc(2026, 6, 1, 5)
    expected = utc(2026, 6, 1, 7)  # 09:00 CEST
    for shown in (after, after.astimezone(BERLIN), after.astimezone(ZoneInfo("Asia/Tokyo"))):
        assert expression.next_after(shown, "Europe/Berlin") == expected
    assert expression.next_after(after, "Europe/Berlin").tzinfo is UTC


def test_naive_after_is_refused():
    with pytest.raises(ValueError, match="aware"):
        CronExpression.parse("* * * * *").next_after(datetime(2026, 1, 1), UTC)
    with pytest.raises(ValueError, match="naive"):
        CronExpression.parse("* * * * *").matches(utc(2026, 1, 1))


class FakePytzZone:
    """Quacks like a pytz zone: ``zone`` and ``localize`` (pytz need not be installed)."""

    def __init__(self, zone):
        self.zone = zone

    def localize(self, moment):  # pragma: no cover - only its presence matters
        raise NotImplementedError


def test_resolve_timezone():
    assert resolve_timezone(None) is UTC
    assert resolve_timezone(UTC) is UTC
    assert resolve_timezone("Europe/Berlin") == BERLIN
    assert resolve_timezone(" Europe/Berlin ") == BERLIN
    assert resolve_timezone(BERLIN) is BERLIN
    fixed = timezone(timedelta(hours=5, minutes=30))
    assert resolve_timezone(fixed) is fixed
    assert resolve_timezone(FakePytzZone("America/New_York")) == ZoneInfo("America/New_York")
    assert resolve_timezone(FakePytzZone("UTC")) == ZoneInfo("UTC")
    for bad in ("Mars/Olympus_Mons", "", "../etc/passwd", FakePytzZone("Nowhere/Land")):
        with pytest.raises(InvalidTaskOptions, match="time zone"):
            resolve_timezone(bad)
    with pytest.raises(InvalidTaskOptions, match="int"):
        resolve_timezone(5)


def test_real_pytz_zone():
    pytz = pytest.importorskip("pytz")
    expression = CronExpression.parse("30 2 * * *")
    after = local(BERLIN, 2026, 3, 28, 12)
    assert expression.next_after(after, pytz.timezone("Europe/Berlin")) == utc(2026, 3, 29, 1)
    assert resolve_timezone(pytz.utc) == ZoneInfo("UTC")


def test_fixed_offset_zone():
    zone = timezone(timedelta(hours=-3))
    assert next_run("0 9 * * *", utc(2026, 1, 1), zone) == utc(2026, 1, 1, 12)


# -- the original's CronScheduler -------------------------------------------------------------


def test_cron_scheduler_naive_in_naive_out():
    scheduler = CronScheduler(datetime(2026, 1, 1, 8), crontab="30 7 0 * *")
    assert scheduler.get_next_schedule() == datetime(2026, 1, 5, 7, 30)


def test_cron_scheduler_aware_in_utc_out():
    scheduler = CronScheduler(
        last_schedule=local(BERLIN, 2026, 1, 5, 8, 31), minutes=[30], hours=[7], dow=[0]
    )
    result = scheduler.get_next_schedule()
    assert result == utc(2026, 1, 12, 7, 30)
    assert result.tzinfo is UTC


def test_cron_scheduler_defaults_to_now_and_takes_a_zone():
    before = datetime.now(UTC)
    result = CronScheduler(crontab="* * * * *").get_next_schedule()
    assert before < result <= before + timedelta(minutes=1, seconds=5)
    berlin = CronScheduler(utc(2026, 1, 1), crontab="0 9 * * *", tz="Europe/Berlin")
    assert berlin.get_next_schedule() == utc(2026, 1, 1, 8)


def test_cron_scheduler_validates_at_construction():
    with pytest.raises(InvalidTaskOptions, match="dow"):
        CronScheduler(crontab="0 0 7 * *")


# -- invalid expressions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("60 * * * *", ["minute", "60"]),
        ("* 24 * * *", ["hour", "24"]),
        ("* * 0 * *", ["day-of-month", "0"]),
        ("* * 32 * *", ["day-of-month", "32"]),
        ("* * * 0 *", ["month", "0"]),
        ("* * * 13 *", ["month", "13"]),
        ("* * * * 8", ["day-of-week", "8"]),
        ("5-3 * * * *", ["minute", "5-3", "reversed"]),
        ("* * * DEC-JAN *", ["month", "DEC-JAN", "reversed"]),
        ("* * * *", ["5 fields", "got 4"]),
        ("* * * * * *", ["5 fields", "got 6"]),
        ("", ["5 fields", "got 0"]),
        ("* * * FOO *", ["month", "FOO"]),
        ("* * * * FUN", ["day-of-week", "FUN"]),
        ("JAN * * * *", ["minute", "JAN"]),
        ("1,,2 * * * *", ["minute", "1,,2", "empty"]),
        ("* 1, * * *", ["hour", "1,", "empty"]),
        ("*/0 * * * *", ["minute", "step 0"]),
        ("* 1-5/0 * * *", ["hour", "step 0"]),
        ("*/x * * * *", ["minute", "step", "'x'"]),
        ("-5 * * * *", ["minute", "-5"]),
        ("1.5 * * * *", ["minute", "1.5"]),
        ("* * L * *", ["day-of-month", "L"]),
        ("* * * * 5#2", ["day-of-week", "5#2"]),
        ("0 0 31 2 *", ["day-of-month", "31", "never"]),
        ("0 0 30,31 2 *", ["day-of-month", "30,31", "never"]),
        ("0 0 31 4,6,9,11 *", ["day-of-month", "31", "never"]),
        ("@every_minute", ["@every_minute"]),
    ],
)
def test_invalid_standard_expressions(expr, words):
    with pytest.raises(InvalidTaskOptions) as caught:
        CronExpression.parse(expr)
    assert isinstance(caught.value, ValueError)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"crontab": "60 * * * *"}, ["minutes", "60"]),
        ({"crontab": "* 24 * * *"}, ["hours", "24"]),
        ({"crontab": "* * 7 * *"}, ["dow", "7", "0 = Monday"]),
        ({"crontab": "* * * 0 *"}, ["months", "0"]),
        ({"crontab": "* * * 13 *"}, ["months", "13"]),
        ({"crontab": "* * * * 0"}, ["dom", "0"]),
        ({"crontab": "* * * * 32"}, ["dom", "32"]),
        ({"crontab": "5-3 * * * *"}, ["minutes", "5-3", "reversed"]),
        ({"crontab": "* * * *"}, ["5 fields", "got 4"]),
        ({"crontab": "1,,2 * * * *"}, ["minutes", "empty"]),
        ({"crontab": "*/5 * * * *"}, ["minutes", "*/5", "only integers"]),
        ({"crontab": "* * MON * *"}, ["dow", "MON", "only integers"]),
        ({"crontab": "* * * * L"}, ["dom", "L"]),
        ({"crontab": "0 0 * 2 30,31"}, ["day-of-month (dom)", "never"]),
        ({"crontab": 5}, ["crontab", "string"]),
        ({"minutes": [60]}, ["minutes", "60"]),
        ({"hours": [-1]}, ["hours", "-1"]),
        ({"dow": [7]}, ["dow", "7"]),
        ({"months": [0]}, ["months", "0"]),
        ({"dom": [32]}, ["dom", "32"]),
        ({"dom": [30, 31], "months": [2]}, ["dom", "months=[2]", "never"]),
        ({"minutes": [True]}, ["minutes", "True", "bool"]),
        ({"hours": False}, ["hours", "False"]),
        ({"minutes": [1.0]}, ["minutes", "1.0", "integer"]),
        ({"minutes": ["5"]}, ["minutes", "'5'", "integer"]),
        ({"minutes": "5"}, ["minutes", "crontab"]),
        ({"dow": []}, ["dow", "empty"]),
        ({"dom": object()}, ["dom", "list"]),
    ],
)
def test_invalid_legacy_schedules(kwargs, words):
    with pytest.raises(InvalidTaskOptions) as caught:
        CronExpression.from_legacy(**kwargs)
    assert isinstance(caught.value, ValueError)
    for word in words:
        assert word in str(caught.value)


def test_invalid_direct_construction():
    with pytest.raises(InvalidTaskOptions, match="minute"):
        CronExpression(frozenset({60}), *[frozenset({1})] * 4, True, True)
    with pytest.raises(InvalidTaskOptions, match="hour"):
        CronExpression(frozenset({0}), frozenset(), *[frozenset({1})] * 3, True, True)


def test_parse_refuses_non_strings():
    with pytest.raises(InvalidTaskOptions, match="string"):
        CronExpression.parse(None)


def test_rare_schedules_come_from_the_calendar_walk():
    """Far-apart runs are found by whole months and days, not minute by minute."""
    rng = random.Random(4)
    leap_day = CronExpression.parse("0 0 29 2 *")
    leap_day_or_monday = CronExpression.parse("0 0 29 2 1")  # in February: the 29th or Mondays
    chatham = ZoneInfo("Pacific/Chatham")
    for _ in range(200):
        after = utc(rng.randint(2000, 2040), rng.randint(1, 12), rng.randint(1, 28))
        run = leap_day.next_after(after, chatham).astimezone(chatham)
        assert (run.month, run.day, run.hour, run.minute) == (2, 29, 0, 0)
        assert after < run <= after + timedelta(days=366 * 8 + 1)
        run = leap_day_or_monday.next_after(after, "America/New_York")
        run = run.astimezone(ZoneInfo("America/New_York"))
        assert run.month == 2 and (run.day == 29 or run.weekday() == 0)


def test_single_value_range_with_step():
    # "0-0/1" is minute 0 only (cronsim 2.8 reads a one-value range with a step as "0/1").
    assert CronExpression.parse("0-0/1 * * * *").minutes == frozenset({0})
    assert CronExpression.parse("5-5/10 * * * *").minutes == frozenset({5})
    assert CronExpression.parse("5/20 * * * *").minutes == frozenset({5, 25, 45})
    assert CronExpression.parse("50-59/20 * * * *").minutes == frozenset({50})
