"""Concurrency and rate limits: the options, validated when declared, and the keys of one call.

``concurrency_limit=N`` (with ``concurrency_key=``, a template or a callable
of the arguments, as ``unique_key``; without it the task's name): at most N
tasks with the same key run at once, across every worker.  ``rate_limit=
"100/m"`` (with ``rate_key=``; without it the task's name): at most 100 starts
in any window of a minute.  Keys are not namespaced by the task's name, so
tasks that name the same key share its limit.

The database holds the guarantees (autotask.db.flow); this module only
validates the options and computes what a row stores.
"""

import hashlib
import numbers
import re

from ..exceptions import InvalidTaskOptions
from . import unique as _unique

KEY_LENGTH = 255  # the columns' length; longer keys are stored as their hash
UNITS = {"s": 1, "m": 60, "h": 3600}
RATE_HELP = 'a str "<count>/<window>" such as "100/m", "10/5s" or "1000/h" (units s, m, h)'
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smh])\s*$")


def check_limit(value):
    """``concurrency_limit=``: None or an int >= 1; raise otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTaskOptions(f"concurrency_limit must be an int >= 1 (or None), not {value!r}")
    if value < 1:
        raise InvalidTaskOptions(
            f"concurrency_limit must be >= 1, not {value!r}: a limit of 0 would never run the task"
        )
    return int(value)


def parse_rate(value):
    """``rate_limit=``: None or "<count>/<window>"; return None or (count, window seconds)."""
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:  # already parsed (replace() of TaskOptions)
        count, window = value
        if isinstance(count, int) and count >= 1 and isinstance(window, float) and window > 0:
            return value
    if not isinstance(value, str):
        raise InvalidTaskOptions(f"rate_limit must be {RATE_HELP}, not {value!r}")
    match = RATE_RE.match(value)
    if not match:
        raise InvalidTaskOptions(f"rate_limit must be {RATE_HELP}, not {value!r}")
    count, length, unit = int(match[1]), float(match[2] or 1), match[3]
    if count < 1:
        raise InvalidTaskOptions(f"rate_limit {value!r}: the count must be >= 1")
    window = length * UNITS[unit]
    if window <= 0:
        raise InvalidTaskOptions(f"rate_limit {value!r}: the window must be longer than 0")
    return count, window


def check(options):
    """Validate the limit options of ``options`` (a TaskOptions) together; raise on a bad combination."""
    _unique.check_unique_key(options.concurrency_key, "concurrency_key")
    _unique.check_unique_key(options.rate_key, "rate_key")
    if options.concurrency_key is not None and options.concurrency_limit is None:
        raise InvalidTaskOptions("concurrency_key needs concurrency_limit (the number of tasks per key)")
    if options.rate_key is not None and options.rate_limit is None:
        raise InvalidTaskOptions('rate_key needs rate_limit (such as "100/m")')
    unique = options.unique is not None or options.unique_key is not None
    if options.concurrency_limit is not None and unique:
        raise InvalidTaskOptions(
            "a task cannot be both unique and concurrency-limited (unique with concurrency_limit "
            "is not supported): drop one of them"
        )


def check_template_fields(func, options):
    """Raise unless the {name}s of the key templates are parameters of ``func``."""
    _unique.check_template_fields(func, options.concurrency_key, "concurrency_key")
    _unique.check_template_fields(func, options.rate_key, "rate_key")


def stored_key(key):
    """``key`` as stored: itself, or its SHA-256 when longer than the column."""
    if len(key) <= KEY_LENGTH:
        return key
    return f"{key[:150]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def concurrency_key(name, options, func, args, kwargs):
    """The stored concurrency key of one call of the task ``name`` (None: no limit)."""
    if options.concurrency_limit is None:
        return None
    if options.concurrency_key is None:
        return stored_key(name)
    return stored_key(_unique.user_key(func, options.concurrency_key, args, kwargs, "concurrency_key"))


def rate_key(name, options, func, args, kwargs):
    """The stored rate key of one call of the task ``name`` (None: no rate limit)."""
    if options.rate_limit is None:
        return None
    if options.rate_key is None:
        return stored_key(name)
    return stored_key(_unique.user_key(func, options.rate_key, args, kwargs, "rate_key"))


def rate_text(rate):
    """(count, window seconds) as written: "100/60s"."""
    count, window = rate
    return f"{count}/{window:g}s"
