"""Unit tests of autotask.serialization (no database needed)."""

import base64
import contextlib
import enum
import io
import json
import math
import os
import pickle
import uuid
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import django
import pytest
from django.apps import apps
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
    # Running without the project's pytest setup: a minimal configuration suffices.
    settings.configure(INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"])
if not apps.ready:
    django.setup()

from django.test import override_settings

from autotask.exceptions import CorruptPayload, SerializationError
from autotask.serialization import (
    decode_call,
    decode_value,
    dumps,
    encode_call,
    encode_value,
    from_jsonable,
    loads,
    to_jsonable,
)

BERLIN = ZoneInfo("Europe/Berlin")
HERE = __name__  # the module name pickle and error messages use for classes defined here
PLAIN_HINT = "pass plain data (str, int, list, dict, ...) or set AUTOTASK_SERIALIZER = 'pickle'."
ENUM_HINT = f"enum members are not stored; pass its .value and convert it back in the task, or {PLAIN_HINT}"
REFUSED = r"^pickle payload refused: AUTOTASK_SERIALIZER is not 'pickle'$"


@contextlib.contextmanager
def serializer_setting(name):
    """AUTOTASK_SERIALIZER set to ``name``; None: not set at all (the default applies)."""
    with override_settings(AUTOTASK_SERIALIZER=name):
        if name is None:
            del settings.AUTOTASK_SERIALIZER
        yield


@pytest.fixture
def pickle_setting():
    """Decoding a pickle payload needs the project to have opted in to pickle."""
    with override_settings(AUTOTASK_SERIALIZER="pickle"):
        yield


def j(value):
    """The plain json.dumps text autotask is expected to write for JSON-native values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def same(a, b):
    """True if ``a`` and ``b`` are equal and of the same types all the way down.

    Scalars are compared by repr (so nan == nan, -0.0 != 0.0, tzinfo and fold count);
    ints by value (repr of huge ints is limited).
    """
    if type(a) is not type(b):
        return False
    t = type(a)
    if t is list or t is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if t is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if t is set or t is frozenset:
        if len(a) != len(b):
            return False
        rest = list(b)
        for x in a:
            for i, y in enumerate(rest):
                if same(x, y):
                    del rest[i]
                    break
            else:
                return False
        return True
    if t is int:
        return a == b
    return repr(a) == repr(b)


def test_same_helper_detects_differences():
    assert same((1, [2.0]), (1, [2.0]))
    assert same(float("nan"), float("nan"))
    assert not same((1,), [1])
    assert not same(1, 1.0)
    assert not same(True, 1)
    assert not same(0.0, -0.0)
    assert not same({1: "a", 2: "b"}, {2: "b", 1: "a"})
    assert not same({1}, {1.0})
    assert not same(
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    )
    assert not same(Decimal("1.0"), Decimal("1"))


# --------------------------------------------------------------------------------------------
# Readable, plain JSON for JSON-native values
# --------------------------------------------------------------------------------------------


def test_encode_call_of_json_native_arguments_is_plain_json():
    text = encode_call((1, "x", {"a": 2}), {}, serializer="json")
    assert text == '{"args":[1,"x",{"a":2}],"kwargs":{}}'
    assert decode_call(text) == ((1, "x", {"a": 2}), {})
    assert type(decode_call(text)[0]) is tuple


def test_encode_call_kwargs_are_plain_and_unicode_is_not_escaped():
    text = encode_call(
        ("é",), {"name": "Zoë", "n": None, "f": 1.5, "b": True, "l": [1, [2]]}, serializer="json"
    )
    assert text == '{"args":["é"],"kwargs":{"name":"Zoë","n":null,"f":1.5,"b":true,"l":[1,[2]]}}'
    assert decode_call(text) == (
        ("é",),
        {"name": "Zoë", "n": None, "f": 1.5, "b": True, "l": [1, [2]]},
    )


def test_encode_call_accepts_a_list_for_args_and_none_for_kwargs():
    assert encode_call([1], None, serializer="json") == '{"args":[1],"kwargs":{}}'


def test_decode_call_of_empty_text_is_a_call_without_arguments():
    assert decode_call("") == ((), {})
    assert decode_call("  ") == ((), {})


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "null"),
        (True, "true"),
        (0, "0"),
        (-7, "-7"),
        (1.5, "1.5"),
        (-0.0, "-0.0"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ('a"b\n', '"a\\"b\\n"'),
        ("\x00", '"\\u0000"'),
        ([], "[]"),
        ({}, "{}"),
        ({"a": [1, {"b": None}]}, '{"a":[1,{"b":null}]}'),
    ],
)
def test_json_native_values_are_written_as_themselves(value, text):
    assert dumps(value, "json") == text
    assert same(loads(text), value)


# --------------------------------------------------------------------------------------------
# Tagged values: exact text and round trip
# --------------------------------------------------------------------------------------------

U = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    "value, text",
    [
        ((), '{"__at__":"tuple","v":[]}'),
        ((1, "x", (2,)), '{"__at__":"tuple","v":[1,"x",{"__at__":"tuple","v":[2]}]}'),
        ({3, 1, 2}, '{"__at__":"set","v":[1,2,3]}'),
        (set(), '{"__at__":"set","v":[]}'),
        (frozenset({"b", "a"}), '{"__at__":"frozenset","v":["a","b"]}'),
        # Unorderable elements are ordered by their encoded text: '"b"' < '1'.
        (frozenset({1, "b"}), '{"__at__":"frozenset","v":["b",1]}'),
        ({1: "a", "b": 2}, '{"__at__":"dict","v":[[1,"a"],["b",2]]}'),
        ({(1, 2): 3}, '{"__at__":"dict","v":[[{"__at__":"tuple","v":[1,2]},3]]}'),
        (
            {date(2024, 1, 2): None},
            '{"__at__":"dict","v":[[{"__at__":"date","v":"2024-01-02"},null]]}',
        ),
        ({None: 1, 1.5: 2, True: 3}, '{"__at__":"dict","v":[[null,1],[1.5,2],[true,3]]}'),
        (b"\x00\xff", '{"__at__":"bytes","v":"AP8="}'),
        (bytearray(b"ab"), '{"__at__":"bytearray","v":"YWI="}'),
        (date(2024, 1, 2), '{"__at__":"date","v":"2024-01-02"}'),
        (
            datetime(2024, 1, 2, 3, 4, 5, 6),
            '{"__at__":"datetime","v":"2024-01-02T03:04:05.000006"}',
        ),
        (
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            '{"__at__":"datetime","v":"2024-01-02T03:04:05+00:00"}',
        ),
        (
            datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            '{"__at__":"datetime","v":"2024-01-02T00:00:00-05:30"}',
        ),
        (
            datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=1), "CET")),
            '{"__at__":"datetime","v":"2024-01-02T00:00:00+01:00","tzname":"CET"}',
        ),
        (
            datetime(2024, 7, 1, 12, tzinfo=BERLIN),
            '{"__at__":"datetime","v":"2024-07-01T12:00:00+02:00","tz":"Europe/Berlin"}',
        ),
        (
            datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN),
            '{"__at__":"datetime","v":"2024-10-27T02:30:00+01:00","tz":"Europe/Berlin","fold":1}',
        ),
        (datetime(2024, 1, 2, fold=1), '{"__at__":"datetime","v":"2024-01-02T00:00:00","fold":1}'),
        (time(1, 2, 3, 4), '{"__at__":"time","v":"01:02:03.000004"}'),
        (time(1, 2, tzinfo=UTC), '{"__at__":"time","v":"01:02:00+00:00"}'),
        (time(1, 2, tzinfo=BERLIN), '{"__at__":"time","v":"01:02:00","tz":"Europe/Berlin"}'),
        (timedelta(days=-1, seconds=5, microseconds=3), '{"__at__":"timedelta","v":[-1,5,3]}'),
        (Decimal("1.10"), '{"__at__":"decimal","v":"1.10"}'),
        (Decimal("-0"), '{"__at__":"decimal","v":"-0"}'),
        (Decimal("NaN"), '{"__at__":"decimal","v":"NaN"}'),
        (Decimal("-Infinity"), '{"__at__":"decimal","v":"-Infinity"}'),
        (U, '{"__at__":"uuid","v":"12345678-1234-5678-1234-567812345678"}'),
    ],
    ids=repr,
)
def test_tagged_values_exact_text_and_round_trip(value, text):
    assert dumps(value, "json") == text
    assert same(loads(text), value)


def test_utc_datetime_comes_back_with_the_utc_singleton():
    value = loads(dumps(datetime(2024, 1, 2, tzinfo=UTC), "json"))
    assert value.tzinfo is UTC


def test_zoneinfo_datetime_comes_back_in_its_zone_with_its_fold():
    first = datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=BERLIN)
    second = first.replace(fold=1)
    for value in (first, second):
        back = loads(dumps(value, "json"))
        assert back.tzinfo is BERLIN
        assert back.fold == value.fold
        assert back.utcoffset() == value.utcoffset()
    assert loads(dumps(first, "json")).utcoffset() == timedelta(hours=2)
    assert loads(dumps(second, "json")).utcoffset() == timedelta(hours=1)


def test_imaginary_zoneinfo_time_round_trips():
    value = datetime(2024, 3, 31, 2, 30, fold=1, tzinfo=BERLIN)  # skipped by DST
    assert same(loads(dumps(value, "json")), value)


class FakePytzZone(tzinfo):
    """Quacks like a localized pytz zone: module pytz, a ``zone`` name, a fixed offset."""

    __module__ = "pytz.tzinfo"

    def __init__(self, zone, offset):
        self.zone = zone
        self.offset = offset

    def utcoffset(self, dt):
        return self.offset

    def dst(self, dt):
        return timedelta(0)

    def tzname(self, dt):
        return "PYTZ"


def test_pytz_zone_is_restored_as_zoneinfo_with_the_matching_fold():
    # 02:30 on 2024-10-27 happens twice in Berlin; pytz says which by its offset (fold is 0).
    for offset, fold in ((timedelta(hours=2), 0), (timedelta(hours=1), 1)):
        value = datetime(2024, 10, 27, 2, 30, tzinfo=FakePytzZone("Europe/Berlin", offset))
        text = dumps(value, "json")
        assert text == (
            f'{{"__at__":"datetime","v":"2024-10-27T02:30:00+0{offset.seconds // 3600}:00",'
            '"tz":"Europe/Berlin"}'
        )
        back = loads(text)
        assert back.tzinfo is BERLIN
        assert back.fold == fold
        assert back.utcoffset() == offset
        # (Equality across zones is False for ambiguous times by PEP 495: compare instants.)
        assert back.astimezone(UTC) == value.astimezone(UTC)


def test_pytz_fixed_offset_is_restored_as_timezone():
    value = datetime(2024, 1, 2, tzinfo=FakePytzZone(None, timedelta(hours=3)))
    back = loads(dumps(value, "json"))
    assert back.tzinfo == timezone(timedelta(hours=3))
    assert type(back.tzinfo) is timezone
    assert back == value


def test_huge_integers_are_tagged_hex_and_round_trip():
    limit = 1 << 1000
    assert dumps(limit - 1, "json") == str(limit - 1)
    assert dumps(-(limit - 1), "json") == str(-(limit - 1))
    assert dumps(limit, "json") == '{"__at__":"int","v":"1' + "0" * 250 + '"}'
    assert dumps(-limit, "json") == '{"__at__":"int","v":"-1' + "0" * 250 + '"}'
    enormous = 7**20000  # beyond the default int_max_str_digits limit of decimal conversion
    for value in (limit, -limit, enormous, -enormous, [enormous], {enormous: enormous}):
        assert same(loads(dumps(value, "json")), value)


def test_strings_with_lone_surrogates_round_trip_as_valid_utf8_text():
    value = "a\udcffb"
    encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()
    assert dumps(value, "json") == f'{{"__at__":"str","v":"{encoded}"}}'
    nested = {"k": [value], value: 1}
    text = dumps(nested, "json")
    text.encode("utf-8")  # storable: no lone surrogates left in the text
    assert same(loads(text), nested)


def test_nested_combination_round_trips():
    value = {
        "when": datetime(2024, 5, 6, 7, 8, 9, tzinfo=BERLIN),
        "ids": {U, uuid.UUID(int=1)},
        "grid": {(0, 0): [Decimal("1.5"), b"x"], (0, 1): ({"deep": frozenset({(1, "a")})},)},
        "span": [timedelta(hours=1), date(2000, 2, 29), time(23, 59, 59, 999999)],
        "blob": bytearray(b"\x00\x01"),
        "mixed": {1: {"__at__": ("not", "a", "tag")}, "x": [None, True, 1, 1.0]},
    }
    assert same(loads(dumps(value, "json")), value)
    assert same(decode_call(encode_call((value, (value,)), {"v": value}, serializer="json")),
                ((value, (value,)), {"v": value}))  # fmt: skip


def test_dict_key_order_is_kept():
    value = {"b": 1, "a": 2, 3: 4}
    assert list(loads(dumps(value, "json"))) == ["b", "a", 3]


def test_set_text_is_deterministic_for_equal_sets():
    a = {"pear", "apple", "fig", "kiwi"}
    b = set(sorted(a, reverse=True))
    assert dumps(a, "json") == dumps(b, "json") == '{"__at__":"set","v":["apple","fig","kiwi","pear"]}'


# --------------------------------------------------------------------------------------------
# Escaping of user dicts that contain the tag key
# --------------------------------------------------------------------------------------------


def test_user_dict_with_the_tag_key_is_escaped_and_round_trips():
    value = {"__at__": "tuple", "v": [1]}
    text = dumps(value, "json")
    assert text == '{"__at__":"dict","v":[["__at__","tuple"],["v",[1]]]}'
    back = loads(text)
    assert back == {"__at__": "tuple", "v": [1]}
    assert type(back) is dict and type(back["v"]) is list


def test_escaped_dicts_nest():
    value = [{"__at__": {"__at__": "set", "v": []}}, {"__at__": "bogus"}]
    assert same(loads(dumps(value, "json")), value)


def test_kwargs_named_like_the_tag_key_round_trip():
    text = encode_call((), {"__at__": "tuple", "v": [1]}, serializer="json")
    assert text == '{"args":[],"kwargs":{"__at__":"dict","v":[["__at__","tuple"],["v",[1]]]}}'
    assert decode_call(text) == ((), {"__at__": "tuple", "v": [1]})


def test_dict_with_tag_like_value_but_no_tag_key_stays_plain():
    value = {"v": "tuple", "__at": 1}
    assert dumps(value, "json") == '{"v":"tuple","__at":1}'
    assert loads(dumps(value, "json")) == value


# --------------------------------------------------------------------------------------------
# to_jsonable / from_jsonable
# --------------------------------------------------------------------------------------------


def test_to_jsonable_builds_the_tagged_tree():
    value = {"a": (1, {2}), "b": [date(2024, 1, 2)]}
    tree = to_jsonable(value)
    assert tree == {
        "a": {"__at__": "tuple", "v": [1, {"__at__": "set", "v": [2]}]},
        "b": [{"__at__": "date", "v": "2024-01-02"}],
    }
    assert same(from_jsonable(tree), value)
    assert same(from_jsonable(json.loads(json.dumps(tree))), value)


def test_to_jsonable_copies_containers():
    inner = [1, 2]
    value = {"k": inner}
    tree = to_jsonable(value)
    assert tree == value
    assert tree is not value and tree["k"] is not inner
    tree["k"].append(3)
    assert inner == [1, 2]


def test_from_jsonable_rejects_unknown_tags():
    with pytest.raises(CorruptPayload, match=r"^unknown tag 'nope'$"):
        from_jsonable([{"__at__": "nope", "v": 1}])


def test_from_jsonable_leaves_plain_trees_alone():
    tree = {"a": [1, "x", None, 1.5, {"b": False}]}
    assert same(from_jsonable(tree), tree)


# --------------------------------------------------------------------------------------------
# Unsupported values
# --------------------------------------------------------------------------------------------


class Thing:
    pass


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class OddTz(tzinfo):
    def utcoffset(self, dt):
        return timedelta(hours=1)

    def dst(self, dt):
        return timedelta(0)

    def tzname(self, dt):
        return "ODD"


def _gen():
    yield 1


@pytest.mark.parametrize(
    "args, kwargs, where, typename",
    [
        ((1, lambda: 1), {}, "args[1]", "function"),
        ((_gen(),), {}, "args[0]", "generator"),
        ((), {"f": io.StringIO()}, "kwargs['f']", "_io.StringIO"),
        ((Thing(),), {}, "args[0]", f"{HERE}.Thing"),
        ((object(),), {}, "args[0]", "object"),
        ((memoryview(b"x"),), {}, "args[0]", "memoryview"),
        ((1j,), {}, "args[0]", "complex"),
        (
            (),
            {"data": {"items": [1, 2, 3, Thing()]}},
            "kwargs['data']['items'][3]",
            f"{HERE}.Thing",
        ),
        (((1, 2, Thing()),), {}, "args[0][2]", f"{HERE}.Thing"),
        ((), {"s": {Thing()}}, "kwargs['s']<element>", f"{HERE}.Thing"),
        ((), {"s": frozenset({(1, Thing())})}, "kwargs['s']<element>[1]", f"{HERE}.Thing"),
        ((), {"d": {Thing(): 1}}, "kwargs['d']<key>", f"{HERE}.Thing"),
        ((), {"d": {(1, 2): [Thing()]}}, "kwargs['d'][(1, 2)][0]", f"{HERE}.Thing"),
        ((), {"d": {"__at__": Thing()}}, "kwargs['d']['__at__']", f"{HERE}.Thing"),
        ((Color.RED,), {}, "args[0]", f"{HERE}.Color"),
    ],
)
def test_unsupported_values_name_where_they_are(args, kwargs, where, typename):
    with pytest.raises(SerializationError) as info:
        encode_call(args, kwargs, serializer="json")
    message = str(info.value)
    assert message.startswith(f"Cannot serialize {where} of type {typename}: ")
    if typename.endswith("Color"):
        assert message.endswith(ENUM_HINT)
    else:
        assert message == f"Cannot serialize {where} of type {typename}: {PLAIN_HINT}"
    assert isinstance(info.value, TypeError)


def test_model_instance_in_kwargs_suggests_its_primary_key_by_name():
    from django.contrib.auth.models import User

    with pytest.raises(SerializationError) as info:
        encode_call((), {"user": User(pk=7)}, serializer="json")
    assert str(info.value) == (
        "Cannot serialize kwargs['user'] of type django.contrib.auth.models.User: model instances "
        "are not stored; pass its primary key (user.pk) and load it in the task."
    )
    with pytest.raises(SerializationError, match=r"\(owner\.pk\)"):
        encode_call((), {"owner": User(pk=7)}, serializer="json")


def test_model_instance_in_args_suggests_its_primary_key_by_model_name():
    from django.contrib.auth.models import User

    with pytest.raises(SerializationError) as info:
        encode_call((1, [User(pk=7)]), {}, serializer="json")
    assert str(info.value) == (
        "Cannot serialize args[1][0] of type django.contrib.auth.models.User: model instances "
        "are not stored; pass its primary key (user.pk) and load it in the task."
    )


def test_queryset_suggests_a_list_of_primary_keys():
    from django.contrib.auth.models import User

    with pytest.raises(SerializationError) as info:
        encode_call((User.objects.all(),), {}, serializer="json")
    assert str(info.value) == (
        "Cannot serialize args[0] of type django.db.models.query.QuerySet: querysets are not "
        "stored; pass a list of primary keys (list(qs.values_list('pk', flat=True))) and query "
        "them in the task."
    )


@pytest.mark.parametrize(
    "value, typename, base",
    [
        (OrderedDict(a=1), "collections.OrderedDict", "dict"),
        (Level.LOW, f"{HERE}.Level", None),
        (type("MyStr", (str,), {})("x"), f"{HERE}.MyStr", "str"),
        (type("MyList", (list,), {})(), f"{HERE}.MyList", "list"),
        (type("MyDatetime", (datetime,), {})(2024, 1, 1), f"{HERE}.MyDatetime", "datetime"),
        (type("MyDate", (date,), {})(2024, 1, 1), f"{HERE}.MyDate", "date"),
    ],
)
def test_subclasses_of_supported_types_are_refused_not_silently_changed(value, typename, base):
    with pytest.raises(SerializationError) as info:
        encode_value({"k": value}, serializer="json")
    if base is None:
        hint = ENUM_HINT
    else:
        hint = (
            f"it would come back as a plain {base}; pass {base}(value) instead, or set "
            "AUTOTASK_SERIALIZER = 'pickle'."
        )
    assert str(info.value) == f"Cannot serialize value['k'] of type {typename}: {hint}"


def test_subclass_dict_key_is_refused():
    key = type("MyStr", (str,), {})("x")
    with pytest.raises(SerializationError, match=r"^Cannot serialize value<key> of type "):
        dumps({key: 1}, "json")


def test_unsupported_tzinfo_is_refused_with_a_hint():
    with pytest.raises(SerializationError) as info:
        encode_call((), {"when": datetime(2024, 1, 1, tzinfo=OddTz())}, serializer="json")
    assert str(info.value) == (
        f"Cannot serialize kwargs['when'] of type datetime.datetime: its tzinfo ({HERE}.OddTz) "
        "cannot be stored; use zoneinfo.ZoneInfo or datetime.timezone, or convert it to UTC."
    )
    with pytest.raises(
        SerializationError, match=r"^Cannot serialize value of type datetime.time: its tzinfo"
    ):
        dumps(time(1, tzinfo=OddTz()), "json")


def test_zoneinfo_without_a_key_is_refused():
    for directory in zoneinfo.TZPATH:
        path = os.path.join(directory, "Europe", "Berlin")
        if os.path.exists(path):
            break
    else:
        pytest.skip("no system time zone database")
    with open(path, "rb") as f:
        zone = ZoneInfo.from_file(f)
    with pytest.raises(SerializationError, match=r"its tzinfo \(zoneinfo.ZoneInfo\) cannot be stored"):
        dumps(datetime(2024, 1, 1, tzinfo=zone), "json")


def test_root_names_for_values():
    with pytest.raises(SerializationError, match=r"^Cannot serialize value of type function: "):
        dumps(lambda: 1, "json")
    with pytest.raises(SerializationError, match=r"^Cannot serialize value\[0\] of type object: "):
        to_jsonable([object()])
    with pytest.raises(SerializationError, match=r"^Cannot serialize value\['r'\] of type object: "):
        encode_value({"r": object()}, serializer="json")


def test_non_str_keyword_names_are_refused():
    with pytest.raises(SerializationError) as info:
        encode_call((), {1: 2}, serializer="json")
    assert str(info.value) == "Cannot serialize kwargs: keyword names must be str, not int."


def test_circular_list_is_a_serialization_error():
    a = [1]
    a.append(a)
    with pytest.raises(SerializationError) as info:
        encode_call((), {"a": a}, serializer="json")
    assert str(info.value) == (
        "Cannot serialize kwargs['a'][1]: circular reference (a container that contains itself); "
        "pass plain data without cycles."
    )


def test_circular_dict_and_tuple_are_serialization_errors():
    d = {"x": 1}
    d["me"] = d
    with pytest.raises(SerializationError, match=r"^Cannot serialize args\[0\]\['me'\]: circular"):
        encode_call((d,), {}, serializer="json")
    t = ([],)
    t[0].append(t)
    with pytest.raises(SerializationError, match=r"^Cannot serialize value\[0\]\[0\]: circular"):
        dumps(t, "json")


def test_too_deep_nesting_is_a_serialization_error():
    value = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(SerializationError) as info:
        dumps(value, "json")
    assert str(info.value) == (
        f"Cannot serialize value: it is nested too deeply; {PLAIN_HINT[:-1]} with less nesting."
    )


def test_failed_encoding_leaves_input_untouched():
    value = {"a": [1, (2, Thing())]}
    with pytest.raises(SerializationError):
        dumps(value, "json")
    assert value["a"][0] == 1 and type(value["a"][1]) is tuple


# --------------------------------------------------------------------------------------------
# Pickle
# --------------------------------------------------------------------------------------------


@dataclass
class Point:
    x: int
    y: int


@pytest.mark.usefixtures("pickle_setting")
def test_pickle_payload_form_and_protocol():
    text = dumps(Point(1, 2), "pickle")
    assert text.startswith("pickle:")
    data = base64.b64decode(text[len("pickle:") :], validate=True)
    assert data[0] == pickle.PROTO[0] and data[1] >= 4
    assert pickle.loads(data) == Point(1, 2)
    assert loads(text) == Point(1, 2)


@pytest.mark.usefixtures("pickle_setting")
def test_pickle_round_trips_what_json_cannot():
    value = {"p": Point(1, 2), "od": OrderedDict(a=1), "lvl": Level.LOW, "t": (1, {2})}
    back = loads(dumps(value, "pickle"))
    assert back == value
    assert type(back["od"]) is OrderedDict and back["lvl"] is Level.LOW


@pytest.mark.usefixtures("pickle_setting")
def test_pickle_call_round_trip():
    text = encode_call((Point(1, 2), (3,)), {"k": {4}}, serializer="pickle")
    assert text.startswith("pickle:")
    assert decode_call(text) == ((Point(1, 2), (3,)), {"k": {4}})


@pytest.mark.usefixtures("pickle_setting")
def test_pickle_handles_cycles():
    a = [1]
    a.append(a)
    back = loads(dumps(a, "pickle"))
    assert back[1] is back


def test_unpicklable_argument_is_named():
    with pytest.raises(SerializationError) as info:
        encode_call((1, lambda: 1), {}, serializer="pickle")
    message = str(info.value)
    assert message.startswith("Cannot pickle args[1] of type function: ")
    assert message.endswith(
        "; pass plain data (str, int, list, dict, ...) instead, e.g. a model instance's primary key."
    )
    assert info.value.__cause__ is not None


def test_unpicklable_kwarg_and_value():
    with pytest.raises(SerializationError) as info:
        encode_call((), {"gen": _gen()}, serializer="pickle")
    assert str(info.value).startswith(
        "Cannot pickle kwargs['gen'] of type generator: cannot pickle 'generator' object; pass plain"
    )
    with open(os.devnull) as f, pytest.raises(SerializationError, match=r"^Cannot pickle value of type _io"):
        encode_value(f, serializer="pickle")


def test_unpicklable_part_of_a_container_names_the_top_level_argument():
    with pytest.raises(SerializationError, match=r"^Cannot pickle kwargs\['data'\] of type dict: "):
        encode_call((1,), {"data": {"fn": lambda: 1}}, serializer="pickle")


# --------------------------------------------------------------------------------------------
# The AUTOTASK_SERIALIZER setting and cross-format decoding
# --------------------------------------------------------------------------------------------


def test_default_serializer_is_json():
    with override_settings():
        del settings.AUTOTASK_SERIALIZER
        assert dumps((1,)) == '{"__at__":"tuple","v":[1]}'
        assert encode_call((1,), {}) == '{"args":[1],"kwargs":{}}'
        assert encode_value([1]) == "[1]"


def test_setting_is_read_at_call_time():
    with override_settings(AUTOTASK_SERIALIZER="pickle"):
        text = encode_call((1,), {"a": 2})
        assert text.startswith("pickle:")
        assert dumps(1).startswith("pickle:")
        assert encode_value(1).startswith("pickle:")
        assert decode_call(text) == ((1,), {"a": 2})
    with override_settings(AUTOTASK_SERIALIZER="json"):
        assert encode_call((1,), {"a": 2}) == '{"args":[1],"kwargs":{"a":2}}'
        with pytest.raises(CorruptPayload, match=REFUSED):  # decoding reads it at call time too
            decode_call(text)
    with override_settings(AUTOTASK_SERIALIZER="pickle"):
        assert decode_call(text) == ((1,), {"a": 2})


def test_explicit_serializer_overrides_the_setting():
    with override_settings(AUTOTASK_SERIALIZER="pickle"):
        assert dumps([1], serializer="json") == "[1]"
    with override_settings(AUTOTASK_SERIALIZER="json"):
        assert dumps([1], serializer="pickle").startswith("pickle:")


def test_json_payloads_decode_whatever_the_setting_pickle_payloads_only_under_pickle():
    value = {"t": (1, 2), "d": date(2024, 1, 2)}
    as_pickle = encode_value(value, serializer="pickle")
    as_json = encode_value(value, serializer="json")
    call_pickle = encode_call((value,), {"k": value}, serializer="pickle")
    call_json = encode_call((value,), {"k": value}, serializer="json")
    for setting in (None, "json", "pickle"):
        with serializer_setting(setting):
            assert same(decode_value(as_json), value)
            assert same(decode_call(call_json), ((value,), {"k": value}))
            if setting == "pickle":
                assert same(decode_value(as_pickle), value)
                assert same(decode_call(call_pickle), ((value,), {"k": value}))
            else:
                with pytest.raises(CorruptPayload, match=REFUSED):
                    decode_value(as_pickle)
                with pytest.raises(CorruptPayload, match=REFUSED):
                    decode_call(call_pickle)


class _TouchOnUnpickle:
    """Unpickling this calls Path(path).touch(): a visible stand-in for running code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


class _SystemOnUnpickle:
    """Unpickling this would call os.system(command). Never unpickled by these tests."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("setting", [None, "json"])
def test_pickle_payloads_are_refused_unless_the_setting_is_pickle(setting, tmp_path, monkeypatch):
    touched = tmp_path / "touched"
    systemed = tmp_path / "systemed"
    harmless = encode_value([1, "x"], serializer="pickle")
    harmless_call = encode_call((1,), {"a": 2}, serializer="pickle")
    touch = "pickle:" + _b64(pickle.dumps(_TouchOnUnpickle(str(touched)), protocol=5))
    system = "pickle:" + _b64(pickle.dumps(_SystemOnUnpickle(f"touch {systemed}"), protocol=5))
    # Even if the refusal were broken, os.system must not run: make it fail loudly instead.
    system_module = os.system.__module__

    def forbidden(command):
        raise AssertionError(f"os.system was called with {command!r}")

    monkeypatch.setattr(f"{system_module}.system", forbidden)
    with serializer_setting(setting):
        for text in (harmless, harmless_call, touch, system):
            for decode in (loads, decode_value, decode_call):
                with pytest.raises(CorruptPayload, match=REFUSED):
                    decode(text)
            with pytest.raises(CorruptPayload, match=REFUSED):
                loads(text.encode())
    assert not touched.exists()
    assert not systemed.exists()


def test_pickle_setting_does_run_unpickled_code(tmp_path):
    """The control for the test above: its payload is a working one, hence the opt-in."""
    touched = tmp_path / "touched"
    text = "pickle:" + _b64(pickle.dumps(_TouchOnUnpickle(str(touched)), protocol=5))
    with override_settings(AUTOTASK_SERIALIZER="pickle"):
        assert loads(text) is None
    assert touched.exists()


def test_unknown_serializer_names_the_allowed_ones():
    message = "Unknown serializer 'yaml': AUTOTASK_SERIALIZER must be one of 'json', 'pickle'."
    with override_settings(AUTOTASK_SERIALIZER="yaml"):
        for call in (lambda: dumps(1), lambda: encode_call((), {}), lambda: encode_value(1)):
            with pytest.raises(ValueError) as info:
                call()
            assert str(info.value) == message
            assert not isinstance(info.value, SerializationError)
    with pytest.raises(ValueError, match=r"^Unknown serializer 'JSON': "):
        dumps(1, serializer="JSON")


# --------------------------------------------------------------------------------------------
# Corrupt payloads
# --------------------------------------------------------------------------------------------


def _b64(data):
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", r"^invalid JSON: Expecting value"),
        ("{", r"^invalid JSON: "),
        ("[1,]", r"^invalid JSON: "),
        ("nul", r"^invalid JSON: "),
        ('{"__at__":"nope","v":1}', r"^unknown tag 'nope'$"),
        ('{"__at__":1,"v":1}', r"^unknown tag 1$"),
        ('{"__at__":null}', r"^unknown tag None$"),
        ('{"__at__":"tuple"}', r"^'tuple' object without 'v'$"),
        ('{"__at__":"tuple","v":"ab"}', r"^'tuple' value must be a list, not str$"),
        ('{"__at__":"set","v":[[1]]}', r"^invalid 'set' object: unhashable type: 'list'$"),
        ('{"__at__":"dict","v":[[1,2,3]]}', r"^'dict' entries must be \[key, value\] pairs$"),
        ('{"__at__":"dict","v":["ab"]}', r"^'dict' entries must be \[key, value\] pairs$"),
        ('{"__at__":"dict","v":[[[1],2]]}', r"^invalid 'dict' object: unhashable type"),
        ('{"__at__":"bytes","v":"!!"}', r"^invalid 'bytes' object: "),
        ('{"__at__":"bytes","v":1}', r"^'bytes' value must be a str, not int$"),
        ('{"__at__":"str","v":"@"}', r"^invalid 'str' object: "),
        ('{"__at__":"int","v":"xyz"}', r"^invalid 'int' object: "),
        ('{"__at__":"date","v":"2024-13-01"}', r"^invalid 'date' object: "),
        ('{"__at__":"datetime","v":"yesterday"}', r"^invalid 'datetime' object: "),
        (
            '{"__at__":"datetime","v":"2024-01-01T00:00:00","tz":"Mars/Olympus"}',
            r"^invalid 'datetime' object: ",
        ),
        (
            '{"__at__":"datetime","v":"2024-01-01T00:00:00","tz":"../../etc/passwd"}',
            r"^invalid 'datetime' object: ",
        ),
        (
            '{"__at__":"datetime","v":"2024-01-01T00:00:00","tz":5}',
            r"^'tz' must be a str, not int$",
        ),
        ('{"__at__":"datetime","v":"2024-01-01T00:00:00","fold":2}', r"^'fold' must be 0 or 1$"),
        ('{"__at__":"datetime","v":"2024-01-01T00:00:00","fold":true}', r"^'fold' must be 0 or 1$"),
        (
            '{"__at__":"datetime","v":"2024-01-01T00:00:00","tzname":"X"}',
            r"^'tzname' without an offset$",
        ),
        ('{"__at__":"time","v":"25:00"}', r"^invalid 'time' object: "),
        (
            '{"__at__":"timedelta","v":[1,2]}',
            r"^'timedelta' value must be \[days, seconds, microseconds\]$",
        ),
        ('{"__at__":"timedelta","v":[1.5,0,0]}', r"^'timedelta' value must be \[days"),
        ('{"__at__":"timedelta","v":[1000000000,0,0]}', r"^invalid 'timedelta' object: "),
        ('{"__at__":"decimal","v":"one"}', r"^invalid 'decimal' object: "),
        ('{"__at__":"uuid","v":"not-a-uuid"}', r"^invalid 'uuid' object: "),
        ('[{"__at__":"tuple","v":[{"__at__":"bogus"}]}]', r"^unknown tag 'bogus'$"),
        ("1" * 5000, r"^invalid payload: "),
        ("[" * 100_000 + "]" * 100_000, r"^payload is nested too deeply$"),
        ("pickle:!!!", r"^pickle payload is not valid base64$"),
        ("pickle:é", r"^pickle payload is not valid base64$"),
        ("pickle:" + _b64(b"not a pickle"), r"^cannot unpickle payload: "),
        ("pickle:", r"^cannot unpickle payload: EOFError"),
        (
            "pickle:" + _b64(b"cno_such_module_xyz\nThing\n."),
            r"^cannot unpickle payload: ModuleNotFoundError",
        ),
        ("pickle:" + _b64(pickle.dumps([1, 2])[:-3]), r"^cannot unpickle payload: "),
    ],
)
def test_corrupt_payloads_raise_corrupt_payload(text, reason):
    for setting in ("pickle", None, "json"):
        # Without the pickle setting a pickle payload is refused before it is even looked at.
        expected = REFUSED if setting != "pickle" and text.startswith("pickle:") else reason
        with serializer_setting(setting):
            with pytest.raises(CorruptPayload, match=expected):
                loads(text)
            with pytest.raises(CorruptPayload, match=expected):
                decode_value(text)
            if text.strip():
                with pytest.raises(CorruptPayload, match=expected):
                    decode_call(text)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (None, r"^payload must be text, not NoneType$"),
        (42, r"^payload must be text, not int$"),
        (b"\xff", r"^payload is not UTF-8 text$"),
    ],
)
def test_non_text_payloads_raise_corrupt_payload(payload, reason):
    with pytest.raises(CorruptPayload, match=reason):
        loads(payload)


def test_bytes_payloads_are_accepted():
    assert loads(b'{"__at__":"tuple","v":[1]}') == (1,)
    assert loads(memoryview(b"[1]")) == [1]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[1,2]", r"^not a call payload \(expected args and kwargs\)$"),
        ('{"args":[],"extra":1}', r"^not a call payload"),
        ('{"args":{},"kwargs":{}}', r"^'args' must be a list, not dict$"),
        ('{"args":[],"kwargs":[]}', r"^'kwargs' must be a dict, not list$"),
        (
            '{"args":[],"kwargs":{"__at__":"dict","v":[[1,2]]}}',
            r"^keyword names in a call payload must be str$",
        ),
        ("pickle:" + _b64(pickle.dumps([1, 2])), r"^not a call payload"),
        (
            "pickle:" + _b64(pickle.dumps(([1], {}))),
            r"^pickled call is not an \(args, kwargs\) pair$",
        ),
        (
            "pickle:" + _b64(pickle.dumps(((), {1: 2}))),
            r"^keyword names in a call payload must be str$",
        ),
    ],
)
def test_malformed_call_payloads(text, reason):
    with override_settings(AUTOTASK_SERIALIZER="pickle"), pytest.raises(CorruptPayload, match=reason):
        decode_call(text)
    if text.startswith("pickle:"):
        with pytest.raises(CorruptPayload, match=REFUSED):
            decode_call(text)


def test_call_payload_parts_may_be_omitted():
    assert decode_call('{"args":[1]}') == ((1,), {})
    assert decode_call('{"kwargs":{"a":1}}') == ((), {"a": 1})


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_offsets = st.integers(min_value=-1439, max_value=1439).map(lambda m: timedelta(minutes=m))
_tzinfos = st.one_of(
    st.none(),
    st.just(UTC),
    _offsets.map(timezone),
    st.builds(timezone, _offsets, st.text(st.characters(codec="ascii"), min_size=1, max_size=6)),
    st.timezones(),
)
_texts = st.one_of(
    st.text(),
    st.sampled_from(["__at__", "v", "tz", ""]),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters(), max_size=4),
)
_ints = st.one_of(
    st.integers(),
    st.builds(lambda n, neg: -n if neg else n, st.integers(2**995, 2**1100), st.booleans()),
)


def _scalars(*, nan_decimals):
    return st.one_of(
        st.none(),
        st.booleans(),
        _ints,
        st.floats(),
        _texts,
        st.binary(max_size=8),
        st.dates(),
        st.datetimes(timezones=_tzinfos),
        st.times(timezones=_tzinfos),
        st.timedeltas(),
        st.decimals(allow_nan=nan_decimals),
        st.uuids(),
    )


def _hashable_containers(inner):
    return st.one_of(st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3))


hashables = st.recursive(_scalars(nan_decimals=False), _hashable_containers, max_leaves=6)


def _containers(inner):
    return st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_texts, inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=3),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    )


values = st.recursive(
    st.one_of(_scalars(nan_decimals=True), st.binary(max_size=8).map(bytearray)), _containers, max_leaves=20
)
_prop = hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_prop
@given(values)
def test_property_json_round_trip_preserves_values_and_types(value):
    text = dumps(value, "json")
    text.encode("utf-8")  # always storable as UTF-8
    assert same(loads(text), value)
    assert same(from_jsonable(to_jsonable(value)), value)
    assert same(from_jsonable(json.loads(json.dumps(to_jsonable(value)))), value)


@_prop
@given(values)
def test_property_pickle_round_trip(value):
    with override_settings(AUTOTASK_SERIALIZER="pickle"):
        assert same(loads(dumps(value, "pickle")), value)


@_prop
@given(
    st.lists(values, max_size=3).map(tuple),
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True) | st.just("__at__"),
        values,
        max_size=3,
    ),
    st.sampled_from(["json", "pickle"]),
)
def test_property_call_round_trip(args, kwargs, serializer):
    text = encode_call(args, kwargs, serializer=serializer)
    with override_settings(AUTOTASK_SERIALIZER=serializer):
        back_args, back_kwargs = decode_call(text)
    assert same(back_args, args)
    assert same(back_kwargs, kwargs)


def _json_containers(inner):
    keys = st.text().filter(lambda k: k != "__at__")
    return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4)


json_native = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(),
        st.text(),
    ),
    _json_containers,
    max_leaves=20,
)


@_prop
@given(json_native)
def test_property_json_native_values_are_plain_json(value):
    assert dumps(value, "json") == j(value)
    assert same(loads(j(value)), value)


_tags = st.sampled_from(
    ["tuple", "set", "frozenset", "dict", "int", "str", "bytes", "bytearray", "date", "datetime",
     "time", "timedelta", "decimal", "uuid", "nope"]
)  # fmt: skip
_tree_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        ["2024-01-02", "12:00:00+01:00", "2024-10-27T02:30:00+01:00", "Europe/Berlin", "AP8=", "ff", str(U)]
    ),
)


def _tree_containers(inner):
    """Plain JSON containers, and objects that look (or nearly look) like tagged values."""
    return st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["v", "tz", "tzname", "fold", "x"]), inner, max_size=4),
        st.fixed_dictionaries(
            {"__at__": _tags | inner},
            optional={"v": inner, "tz": inner, "tzname": inner, "fold": inner},
        ),
    )


_json_trees = st.recursive(_tree_leaves, _tree_containers, max_leaves=12)


@_prop
@given(_json_trees)
def test_property_arbitrary_json_decodes_or_raises_corrupt_payload(tree):
    text = json.dumps(tree)
    for decode in (loads, decode_call):
        try:
            decode(text)
        except CorruptPayload:
            pass
    try:
        from_jsonable(tree)
    except CorruptPayload:
        pass


@_prop
@given(st.text(max_size=40))
def test_property_arbitrary_text_decodes_or_raises_corrupt_payload(text):
    try:
        loads(text)
    except CorruptPayload:
        pass


def test_nan_float_round_trips_as_nan():
    back = loads(dumps([float("nan")], "json"))
    assert type(back[0]) is float and math.isnan(back[0])
