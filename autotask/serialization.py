"""Encoding of task arguments and results into payload text, and back.

Two codecs exist:

* ``json`` (the default): a type-preserving JSON dialect. JSON-native values
  (``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict`` with
  ``str`` keys) are written as themselves, so stored rows stay readable. Every
  other supported type is written as a *tagged object*
  ``{"__at__": "<tag>", "v": ...}``, for example ``{"__at__": "tuple", "v": [1, 2]}``.
  A ``dict`` whose keys are not all plain ``str``, or that has the tag key
  ``"__at__"`` itself, is written as ``{"__at__": "dict", "v": [[key, value], ...]}``
  so that it still round-trips.
* ``pickle`` (opt-in): ``"pickle:"`` followed by the base64 of a pickle.

Payload text is self-describing: :func:`loads` recognises both forms no matter
what ``AUTOTASK_SERIALIZER`` is set to today (JSON text never starts with ``p``).

Encoding failures raise :class:`~autotask.exceptions.SerializationError`
naming where the offending value sits (``args[1]``, ``kwargs['data']['items'][3]``);
decoding failures raise :class:`~autotask.exceptions.CorruptPayload` only.
"""

from __future__ import annotations

import base64
import enum
import json
import pickle
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from autotask.conf import conf
from autotask.exceptions import CorruptPayload, SerializationError

__all__ = [
    "PICKLE_PREFIX",
    "SERIALIZERS",
    "TAG",
    "decode_call",
    "decode_value",
    "dumps",
    "encode_call",
    "encode_value",
    "from_jsonable",
    "loads",
    "to_jsonable",
]

TAG = "__at__"
SERIALIZERS = ("json", "pickle")
PICKLE_PREFIX = "pickle:"
PICKLE_PROTOCOL = 5

# Integers at least this large are written as tagged hex: decimal conversion of huge ints is
# slow and limited by sys.set_int_max_str_digits (whose minimum is 640 digits).
_BIG_INT = 1 << 1000

# Types written as themselves without any check (str and int need one, see _enc).
_PASS = frozenset({float, bool, type(None)})

_PLAIN_HINT = "pass plain data (str, int, list, dict, ...) or set AUTOTASK_SERIALIZER = 'pickle'"

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=True, check_circular=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Encoding to the tagged JSON tree
# --------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """Internal: ``value`` cannot be encoded; ``path`` is filled in innermost-first."""

    def __init__(self, value, kind="type"):
        super().__init__(value)
        self.value = value
        self.kind = kind
        self.path = []  # list of (kind, key), innermost first


def _enc(v):
    t = type(v)
    if t is str:
        return v if v.isascii() or _utf8_ok(v) else _enc_odd_str(v)
    if t is int:
        return v if -_BIG_INT < v < _BIG_INT else {TAG: "int", "v": format(v, "x")}
    if t is float or t is bool or v is None:
        return v
    if t is dict:
        return _enc_dict(v)
    if t is list:
        return _enc_items(v)
    encoder = _ENCODERS.get(t)
    if encoder is None:
        raise _Unsupported(v)
    return encoder(v)


def _utf8_ok(s):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (e.g. from os.fsdecode)
        return False
    return True


def _enc_odd_str(v):
    return {TAG: "str", "v": _b64(v.encode("utf-8", "surrogatepass"))}


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _relocate(exc, children):
    """Find which child of a container failed, record its position on the error, re-raise.

    Only runs on the error path, so the hot path needs no per-item bookkeeping.
    """
    for segment, child in children:
        try:
            _enc(child)
        except _Unsupported as inner:
            inner.path.append(segment)
            raise inner from None
    raise exc


def _enc_items(v):
    try:
        return [
            x
            if ((t := type(x)) is str and x.isascii())
            or (t is int and -_BIG_INT < x < _BIG_INT)
            or t in _PASS
            else _enc(x)
            for x in v
        ]
    except _Unsupported as exc:
        _relocate(exc, ((("item", i), x) for i, x in enumerate(v)))


def _enc_tuple(v):
    return {TAG: "tuple", "v": _enc_items(v)}


def _enc_dict(d):
    try:
        for k in d:
            if type(k) is not str or not (k.isascii() or _utf8_ok(k)):
                break
        else:
            if TAG not in d:
                return {
                    k: x
                    if ((t := type(x)) is str and x.isascii())
                    or (t is int and -_BIG_INT < x < _BIG_INT)
                    or t in _PASS
                    else _enc(x)
                    for k, x in d.items()
                }
        return {TAG: "dict", "v": [[_enc(k), _enc(x)] for k, x in d.items()]}
    except _Unsupported as exc:
        _relocate(exc, _dict_children(d))


def _dict_children(d):
    for k, x in d.items():
        if type(k) is not str:
            yield ("key", None), k
        yield ("item", k), x


def _enc_set(v, tag):
    try:
        items = sorted(v)  # deterministic text for equal sets
        ordered = True
    except (TypeError, ArithmeticError):  # mixed types, Decimal NaN: order by encoded text below
        items = list(v)
        ordered = False
    try:
        out = [_enc(x) for x in items]
    except _Unsupported as exc:
        _relocate(exc, ((("element", None), x) for x in items))
    if not ordered:
        out.sort(key=_ENCODER.encode)
    return {TAG: tag, "v": out}


def _enc_clock(v, tag):
    """datetime or time: ISO text (with its UTC offset when known), plus what the offset
    alone cannot restore: a zone name ("tz"), a fixed offset's custom name ("tzname"), fold."""
    extra = None if v.tzinfo is None else _enc_tz(v, v.tzinfo)
    out = {TAG: tag, "v": v.isoformat()}
    if extra:
        out.update(extra)
    if v.fold:
        out["fold"] = 1
    return out


def _enc_tz(value, tz):
    t = type(tz)
    if t is timezone:
        name = tz.tzname(None)
        if name == timezone(tz.utcoffset(None)).tzname(None):
            return None
        if not (name.isascii() or _utf8_ok(name)):
            raise _Unsupported(value, "tz")
        return {"tzname": name}
    if t is ZoneInfo:
        if tz.key is None:  # ZoneInfo.from_file(): no name to restore it by
            raise _Unsupported(value, "tz")
        return {"tz": tz.key}
    if t.__module__.partition(".")[0] == "pytz":
        zone = getattr(tz, "zone", None)
        if isinstance(zone, str):
            return {"tz": zone}  # restored as zoneinfo.ZoneInfo(zone)
        if value.utcoffset() is not None:
            return None  # a pytz fixed offset: the offset in "v" restores it as a timezone
    raise _Unsupported(value, "tz")


_ENCODERS = {
    tuple: _enc_tuple,
    set: lambda v: _enc_set(v, "set"),
    frozenset: lambda v: _enc_set(v, "frozenset"),
    bytes: lambda v: {TAG: "bytes", "v": _b64(v)},
    bytearray: lambda v: {TAG: "bytearray", "v": _b64(v)},
    date: lambda v: {TAG: "date", "v": v.isoformat()},
    datetime: lambda v: _enc_clock(v, "datetime"),
    time: lambda v: _enc_clock(v, "time"),
    timedelta: lambda v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v: {TAG: "decimal", "v": str(v)},
    uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
}


# --------------------------------------------------------------------------------------------
# Error messages
# --------------------------------------------------------------------------------------------


def _typename(t):
    if t.__module__ == "builtins":
        return t.__qualname__
    return f"{t.__module__}.{t.__qualname__}"


def _safe_repr(key):
    try:
        return repr(key)
    except ValueError:  # an int beyond the int_max_str_digits limit
        return "..."


def _render_path(root, segments):
    parts = [root]
    for kind, key in segments:
        if kind == "item":
            parts.append(f"[{_safe_repr(key)}]")
        else:
            parts.append(f"<{kind}>")
    return "".join(parts)


# Supported types a subclass may be mistaken for, most specific first.
_BASES = (bool, int, float, str, bytes, bytearray, list, tuple, dict, set, frozenset,
          datetime, date, time, timedelta, Decimal, uuid.UUID)  # fmt: skip


def _hint(value, kind, segments):
    if kind == "tz":
        return (
            f"its tzinfo ({_typename(type(value.tzinfo))}) cannot be stored; use "
            "zoneinfo.ZoneInfo or datetime.timezone, or convert it to UTC"
        )
    from django.db.models import Model, QuerySet  # only on the error path: keep imports light

    if isinstance(value, Model):
        name = type(value)._meta.model_name
        if segments and segments[0][0] == "item":
            key = segments[0][1]
            if isinstance(key, str) and key.isidentifier():
                name = key
        return f"model instances are not stored; pass its primary key ({name}.pk) and load it in the task"
    if isinstance(value, QuerySet):
        return (
            "querysets are not stored; pass a list of primary keys "
            "(list(qs.values_list('pk', flat=True))) and query them in the task"
        )
    if isinstance(value, enum.Enum):
        return (
            f"enum members are not stored; pass its .value and convert it back in the task, or {_PLAIN_HINT}"
        )
    for base in _BASES:
        if isinstance(value, base):
            return (
                f"it would come back as a plain {base.__name__}; pass {base.__name__}(value) "
                f"instead, or set AUTOTASK_SERIALIZER = 'pickle'"
            )
    return _PLAIN_HINT


def _unsupported_error(exc, root):
    segments = exc.path[::-1]
    path = _render_path(root, segments)
    value = exc.value
    hint = _hint(value, exc.kind, segments)
    return SerializationError(f"Cannot serialize {path} of type {_typename(type(value))}: {hint}.")


def _find_cycle(v, active):
    """Return the path (innermost first) to a container that contains itself, or None."""
    t = type(v)
    if t is list or t is tuple:
        children = ((("item", i), x) for i, x in enumerate(v))
    elif t is dict:
        children = _dict_children(v)
    elif t is set or t is frozenset:
        children = ((("element", None), x) for x in v)
    else:
        return None
    if id(v) in active:
        return []
    active.add(id(v))
    for segment, child in children:
        path = _find_cycle(child, active)
        if path is not None:
            path.append(segment)
            return path
    active.discard(id(v))
    return None


def _recursion_error(value, root):
    try:
        path = _find_cycle(value, set())
    except RecursionError:
        path = None
    if path is None:
        return SerializationError(
            f"Cannot serialize {root}: it is nested too deeply; {_PLAIN_HINT} with less nesting."
        )
    where = _render_path(root, path[::-1])
    return SerializationError(
        f"Cannot serialize {where}: circular reference (a container that contains itself); "
        "pass plain data without cycles."
    )


def _convert(fn, value, root):
    try:
        return fn(value)
    except _Unsupported as exc:
        raise _unsupported_error(exc, root) from None
    except RecursionError:
        raise _recursion_error(value, root) from None


def to_jsonable(value):
    """Return the tagged JSON tree (dicts, lists, str, int, float, bool, None) for ``value``.

    Raises SerializationError for values the JSON codec cannot store.
    """
    return _convert(_enc, value, "value")


def _json_text(tree):
    try:
        return _ENCODER.encode(tree)
    except (RecursionError, ValueError) as exc:  # pragma: no cover - the tree walk fails first
        raise SerializationError(f"Cannot serialize value: {exc}") from None


# --------------------------------------------------------------------------------------------
# Decoding from the tagged JSON tree
# --------------------------------------------------------------------------------------------


def _expect(value, t, what):
    if type(value) is not t:
        raise CorruptPayload(f"{what} must be a {t.__name__}, not {type(value).__name__}")
    return value


def _v(d, t):
    if "v" not in d:
        raise CorruptPayload(f"{d[TAG]!r} object without 'v'")
    return _expect(d["v"], t, f"{d[TAG]!r} value")


def _dec_bytes(d):
    return base64.b64decode(_v(d, str), validate=True)


def _dec_str(d):
    return _dec_bytes(d).decode("utf-8", "surrogatepass")


def _dec_dict(d):
    out = {}
    for pair in _v(d, list):
        if type(pair) is not list or len(pair) != 2:
            raise CorruptPayload("'dict' entries must be [key, value] pairs")
        out[pair[0]] = pair[1]
    return out


def _dec_timedelta(d):
    parts = _v(d, list)
    if len(parts) != 3 or any(type(p) is not int for p in parts):
        raise CorruptPayload("'timedelta' value must be [days, seconds, microseconds]")
    return timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])


def _dec_clock(d, cls):
    value = cls.fromisoformat(_v(d, str))
    fold = d.get("fold", 0)
    if fold not in (0, 1) or type(fold) is not int:
        raise CorruptPayload("'fold' must be 0 or 1")
    if "tz" in d:
        offset = value.utcoffset()
        value = value.replace(tzinfo=ZoneInfo(_expect(d["tz"], str, "'tz'")), fold=fold)
        if offset is not None and value.utcoffset() != offset:
            # Written from a pytz datetime (fold always 0): pick the fold matching the offset.
            other = value.replace(fold=1 - fold)
            if other.utcoffset() == offset:
                value = other
        return value
    if "tzname" in d:
        offset = value.utcoffset()
        if offset is None:
            raise CorruptPayload("'tzname' without an offset")
        value = value.replace(tzinfo=timezone(offset, _expect(d["tzname"], str, "'tzname'")))
    return value.replace(fold=fold) if fold else value


_DECODERS = {
    "tuple": lambda d: tuple(_v(d, list)),
    "set": lambda d: set(_v(d, list)),
    "frozenset": lambda d: frozenset(_v(d, list)),
    "dict": _dec_dict,
    "int": lambda d: int(_v(d, str), 16),
    "str": _dec_str,
    "bytes": _dec_bytes,
    "bytearray": lambda d: bytearray(_dec_bytes(d)),
    "date": lambda d: date.fromisoformat(_v(d, str)),
    "datetime": lambda d: _dec_clock(d, datetime),
    "time": lambda d: _dec_clock(d, time),
    "timedelta": _dec_timedelta,
    "decimal": lambda d: Decimal(_v(d, str)),
    "uuid": lambda d: uuid.UUID(_v(d, str)),
}


def _hook(d):
    if TAG not in d:
        return d
    tag = d[TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise CorruptPayload(f"unknown tag {tag!r}")
    try:
        return decoder(d)
    except CorruptPayload:
        raise
    except Exception as exc:
        raise CorruptPayload(f"invalid {tag!r} object: {exc}") from exc


_DECODER = json.JSONDecoder(object_hook=_hook)


def _from(obj):
    t = type(obj)
    if t is list:
        return [_from(x) for x in obj]
    if t is dict:
        return _hook({k: _from(x) for k, x in obj.items()})
    return obj


def from_jsonable(obj):
    """Inverse of :func:`to_jsonable`; raises CorruptPayload for malformed trees."""
    try:
        return _from(obj)
    except CorruptPayload:
        raise
    except RecursionError:
        raise CorruptPayload("payload is nested too deeply") from None
    except Exception as exc:  # pragma: no cover - _hook already wraps decoder errors
        raise CorruptPayload(f"invalid payload: {exc}") from exc


def _json_loads(text):
    try:
        return _DECODER.decode(text)
    except CorruptPayload:
        raise
    except json.JSONDecodeError as exc:
        raise CorruptPayload(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise CorruptPayload("payload is nested too deeply") from None
    except Exception as exc:  # e.g. an integer literal beyond the int_max_str_digits limit
        raise CorruptPayload(f"invalid payload: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Pickle
# --------------------------------------------------------------------------------------------


def _pickle_bytes(value):
    return pickle.dumps(value, protocol=PICKLE_PROTOCOL)


def _picklable(value):
    try:
        _pickle_bytes(value)
    except Exception:  # noqa: BLE001 - a __reduce__ may raise anything; only "can it" matters here
        return False
    return True


def _pickle_error(where, value, exc):
    return SerializationError(
        f"Cannot pickle {where} of type {_typename(type(value))}: {exc}; pass plain data "
        "(str, int, list, dict, ...) instead, e.g. a model instance's primary key."
    )


def _pickle_text(value, where, parts=()):
    try:
        data = _pickle_bytes(value)
    except Exception as exc:
        for part_where, part in parts:  # name the top-level argument at fault, if one is
            if not _picklable(part):
                raise _pickle_error(part_where, part, exc) from exc
        raise _pickle_error(where, value, exc) from exc
    return PICKLE_PREFIX + _b64(data)


def _unpickle(text):
    # Unpickling runs code: only when the project has opted in to pickle, so a
    # row forged in the task table cannot execute anything in a JSON project.
    if conf.SERIALIZER != "pickle":
        raise CorruptPayload("pickle payload refused: AUTOTASK_SERIALIZER is not 'pickle'")
    try:
        data = base64.b64decode(text[len(PICKLE_PREFIX) :], validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise CorruptPayload("pickle payload is not valid base64") from None
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise CorruptPayload(f"cannot unpickle payload: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _serializer(name):
    if name is None:
        name = conf.SERIALIZER
    if name == "json" or name == "pickle":
        return name
    raise ValueError(f"Unknown serializer {name!r}: AUTOTASK_SERIALIZER must be one of 'json', 'pickle'.")


def _as_text(text):
    if type(text) is str:
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptPayload("payload is not UTF-8 text") from None
    if isinstance(text, str):
        return str(text)
    raise CorruptPayload(f"payload must be text, not {type(text).__name__}")


def dumps(value, serializer=None) -> str:
    """Encode ``value`` as payload text with ``serializer`` (None: AUTOTASK_SERIALIZER)."""
    if _serializer(serializer) == "pickle":
        return _pickle_text(value, "value")
    return _json_text(_convert(_enc, value, "value"))


def loads(text: str):
    """Decode payload text written by :func:`dumps` with either serializer."""
    text = _as_text(text)
    if text.startswith(PICKLE_PREFIX):
        return _unpickle(text)
    return _json_loads(text)


def encode_value(value, *, serializer=None) -> str:
    """Payload text for a task's result."""
    return dumps(value, serializer)


def decode_value(text: str):
    """Inverse of :func:`encode_value`."""
    return loads(text)


def encode_call(args: tuple, kwargs: dict, *, serializer=None) -> str:
    """Payload text for a task's arguments.

    JSON form: ``{"args": [...], "kwargs": {...}}``; pickle form: a pickled ``(args, kwargs)``.
    """
    args = tuple(args)
    kwargs = {} if kwargs is None else dict(kwargs)
    for key in kwargs:
        if type(key) is not str:
            raise SerializationError(
                f"Cannot serialize kwargs: keyword names must be str, not {_typename(type(key))}."
            )
    if _serializer(serializer) == "pickle":
        parts = [(f"args[{i}]", a) for i, a in enumerate(args)]
        parts += [(f"kwargs[{k!r}]", x) for k, x in kwargs.items()]
        return _pickle_text((args, kwargs), "the arguments", parts)
    return _json_text(
        {"args": _convert(_enc_items, args, "args"), "kwargs": _convert(_enc_dict, kwargs, "kwargs")}
    )


def decode_call(text: str) -> tuple[tuple, dict]:
    """Inverse of :func:`encode_call`: return ``(args, kwargs)``.

    Empty text (the ``args`` column's default) means a call without arguments.
    """
    if type(text) is str and not text.strip():
        return (), {}
    obj = loads(text)
    if type(obj) is tuple and len(obj) == 2:  # pickle form
        args, kwargs = obj
        if type(args) is not tuple or type(kwargs) is not dict:
            raise CorruptPayload("pickled call is not an (args, kwargs) pair")
    elif type(obj) is dict and set(obj) <= {"args", "kwargs"}:
        args = tuple(_expect(obj.get("args", []), list, "'args'"))
        kwargs = _expect(obj.get("kwargs", {}), dict, "'kwargs'")
    else:
        raise CorruptPayload("not a call payload (expected args and kwargs)")
    if any(type(k) is not str for k in kwargs):
        raise CorruptPayload("keyword names in a call payload must be str")
    return args, kwargs
