"""Unique tasks: the ``unique=`` and ``unique_key=`` options, and the key of one call.

The database holds the guarantee (a unique index over the rows in their
key's scope, see autotask.db); this module only validates the options and
computes what a row stores: its key (namespaced by the task's name, hashed
to fit the column) and its scope.
"""

import hashlib
import inspect
import numbers
import string
from datetime import timedelta

from ..exceptions import InvalidTaskOptions

# The scopes, as stored in the row's unique_scope column (the index's predicate reads them).
ACTIVE = 1  # at most one WAITING or RUNNING row with the key
WAITING = 2  # at most one not yet started (waiting, or claimed ahead and not started)
WINDOW = 3  # at most one per period of the window, in any state, until its row is deleted
SCOPE_NAMES = {ACTIVE: "active", WAITING: "waiting", WINDOW: "window"}

KEY_LENGTH = 255  # the column's length; longer keys are stored as their hash

UNIQUE_HELP = 'True or "active", "waiting", a timedelta or a number of seconds (a window), or None'


def normalize_unique(value):
    """``unique=`` as stored in TaskOptions: None, "active", "waiting" or a window in seconds."""
    if value is None or value is False:
        return None
    if value is True:
        return "active"
    if isinstance(value, str):
        if value in ("active", "waiting"):
            return value
        raise InvalidTaskOptions(f"unique must be {UNIQUE_HELP}, not {value!r}")
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTaskOptions(f"unique must be {UNIQUE_HELP}, not {value!r}")
    if not value == value or value in (float("inf"), float("-inf")) or value <= 0:
        raise InvalidTaskOptions(f"unique as a window must be a positive finite duration, not {value!r}")
    return float(value)


def check_unique_key(value, option="unique_key"):
    """``unique_key=`` (or another key ``option``): None, a callable, or a non-empty str template.

    Raise otherwise.  The concurrency and rate keys (definitions/limits.py) are declared alike.
    """
    if value is None or callable(value):
        return value
    if not isinstance(value, str) or not value:
        raise InvalidTaskOptions(
            f"{option} must be a callable of the call's arguments or a non-empty str template "
            f"such as 'user-{{user_id}}', not {value!r}"
        )
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise InvalidTaskOptions(f"{option} template {value!r} is malformed: {exc}") from None
    for name in fields:
        if not name.isidentifier():
            raise InvalidTaskOptions(
                f"{option} template {value!r}: each {{...}} must name an argument, not {{{name}}}"
            )
    return value


def check_template_fields(func, template, option="unique_key"):
    """Raise unless every {name} of the str ``template`` is a parameter of ``func``."""
    if not isinstance(template, str):
        return
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return  # no signature to check against: the call will tell
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in parameters:
            raise InvalidTaskOptions(
                f"{option} template {template!r} names {{{name}}}, which is not a parameter of "
                f"{getattr(func, '__qualname__', func)}; it has {', '.join(parameters) or 'none'}"
            )


def scope_of(unique):
    """The stored scope of a normalized ``unique`` option (None: not unique)."""
    if unique is None:
        return None
    if unique == "active":
        return ACTIVE
    if unique == "waiting":
        return WAITING
    return WINDOW


def _bound(func, args, kwargs, option):
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"cannot compute {option}: {exc}") from None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, param in inspect.signature(func).parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}))
    return arguments


def user_key(func, unique_key, args, kwargs, option="unique_key"):
    """The key ``unique_key`` (a template or a callable) gives the call; raise if it is not a str."""
    if callable(unique_key):
        key = unique_key(*args, **kwargs)
        if not isinstance(key, str) or not key:
            raise TypeError(f"{option} {unique_key!r} must return a non-empty str, not {key!r}")
        return key
    arguments = dict(kwargs) if func is None else _bound(func, args, kwargs, option)
    try:
        return unique_key.format_map(arguments)
    except (KeyError, IndexError) as exc:
        raise InvalidTaskOptions(f"{option} template {unique_key!r}: no argument named {exc}") from None


def row_key(name, options, func, args, kwargs, encoded_args, now):
    """(unique_key, unique_scope) of one call of the task ``name``; (None, None) if not unique."""
    unique = options.unique
    if unique is None and options.unique_key is not None:
        unique = "active"  # a key alone asks for the default scope
    if unique is None:
        return None, None
    if options.unique_key is None:
        key = "args:" + hashlib.sha256(encoded_args.encode()).hexdigest()
    else:
        key = user_key(func, options.unique_key, args, kwargs)
    scope = scope_of(unique)
    if scope == WINDOW:
        key = f"{key}@{window_period(unique, now)}"
    return stored_key(name, key), scope


def window_period(seconds, now):
    """The number of the period of length ``seconds`` (aligned to the epoch) that holds ``now``."""
    return int(now.timestamp() // seconds)


def window_end(seconds, now):
    """Seconds from ``now`` to the end of its period."""
    return (window_period(seconds, now) + 1) * seconds - now.timestamp()


def stored_key(name, key):
    """``key`` namespaced by the task's name; its SHA-256 when longer than the column."""
    full = f"{name}:{key}"
    if len(full) <= KEY_LENGTH:
        return full
    return f"{name[:150]}:sha256:{hashlib.sha256(full.encode()).hexdigest()}"
