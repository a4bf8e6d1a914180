"""Task options: validated when a task is declared, stored with each row, read by the worker."""

import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import ClassVar

from ..conf import conf
from ..exceptions import InvalidTaskOptions
from . import limits as _limits
from . import unique as _unique

PRIORITY_RANGE = (-100, 100)  # the range django.tasks uses; higher runs first


def _number(name, value, *, minimum=0.0, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTaskOptions(f"{name} must be a number of seconds, not {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidTaskOptions(f"{name} must be a finite number, not {value!r}")
    if value < minimum:
        raise InvalidTaskOptions(f"{name} must be >= {minimum}, not {value!r}")
    return float(value)


def _integer(name, value, *, minimum=0, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTaskOptions(f"{name} must be an integer, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidTaskOptions(f"{name} must be {bound}, not {value!r}")
    return int(value)


def _queue(value):
    if not isinstance(value, str) or not value or len(value) > 100:
        raise InvalidTaskOptions(f"queue must be a non-empty string of at most 100 characters, not {value!r}")
    return value


class _FromSetting:
    """The default of ``failed_ttl``: AUTOTASK_FAILED_TTL, read when the task fails."""

    def __repr__(self):
        return "AUTOTASK_FAILED_TTL"


FROM_SETTING = _FromSetting()


@dataclass(frozen=True)
class TaskOptions:
    """How a task is stored and retried; validated when built."""

    delay: float = 0.0  # seconds before the first run
    retries: int = 0  # extra attempts after a failure
    ttl: float = 300.0  # seconds the outcome is kept after the task finishes
    queue: str | None = None  # None: AUTOTASK_DEFAULT_QUEUE
    priority: int = 0  # higher first, -100..100
    timeout: float | None = None  # seconds; async tasks are cancelled, sync tasks' child processes killed
    soft_timeout: float | None = (
        None  # seconds; raises SoftTimeLimitExceeded inside a task in a child process
    )
    isolated: bool = False  # run in a child process of the worker (see worker/processes.py)
    retry_delay: float | None = None  # None: AUTOTASK_RETRY_DELAY
    backoff: float | None = None  # None: AUTOTASK_RETRY_BACKOFF
    max_retry_delay: float | None = None  # None: AUTOTASK_RETRY_MAX_DELAY
    # Seconds a failed (ERROR) task is kept; None: until deleted by hand.
    failed_ttl: float | _FromSetting | None = FROM_SETTING
    # Unique tasks (see definitions/unique.py): None, "active", "waiting" or a window in seconds.
    unique: str | float | None = None
    unique_key: Callable[..., str] | str | None = None  # a callable or a template; None: the arguments
    # Concurrency and rate limits (see definitions/limits.py).
    concurrency_limit: int | None = None  # at most this many running per key
    concurrency_key: Callable[..., str] | str | None = None  # a callable or a template; None: the name
    rate_limit: str | tuple[int, float] | None = None  # "100/m"; stored as (count, window seconds)
    rate_key: Callable[..., str] | str | None = None  # a callable or a template; None: the name
    NAMES: ClassVar[tuple[str, ...]]  # set below the class, from its fields

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "delay", _number("delay", self.delay))
        set_(self, "retries", _integer("retries", self.retries))
        set_(self, "ttl", _number("ttl", self.ttl))
        if self.queue is not None:
            _queue(self.queue)
        set_(
            self,
            "priority",
            _integer("priority", self.priority, minimum=PRIORITY_RANGE[0], maximum=PRIORITY_RANGE[1]),
        )
        timeout = _number("timeout", self.timeout, allow_none=True)
        if timeout == 0:
            raise InvalidTaskOptions("timeout must be > 0 (or None for no timeout)")
        set_(self, "timeout", timeout)
        soft_timeout = _number("soft_timeout", self.soft_timeout, allow_none=True)
        if soft_timeout == 0:
            raise InvalidTaskOptions("soft_timeout must be > 0 (or None for no soft limit)")
        if soft_timeout is not None and timeout is not None and soft_timeout >= timeout:
            raise InvalidTaskOptions(
                f"soft_timeout ({soft_timeout:g}) must be shorter than timeout ({timeout:g}): the soft "
                "limit warns the task before the hard limit ends it"
            )
        set_(self, "soft_timeout", soft_timeout)
        if self.isolated is not True and self.isolated is not False:
            raise InvalidTaskOptions(f"isolated must be True or False, not {self.isolated!r}")
        set_(self, "retry_delay", _number("retry_delay", self.retry_delay, allow_none=True))
        set_(self, "backoff", _number("backoff", self.backoff, minimum=1.0, allow_none=True))
        set_(self, "max_retry_delay", _number("max_retry_delay", self.max_retry_delay, allow_none=True))
        if self.failed_ttl is not FROM_SETTING:
            set_(self, "failed_ttl", _number("failed_ttl", self.failed_ttl, allow_none=True))
        set_(self, "unique", _unique.normalize_unique(self.unique))
        _unique.check_unique_key(self.unique_key)
        set_(self, "concurrency_limit", _limits.check_limit(self.concurrency_limit))
        set_(self, "rate_limit", _limits.parse_rate(self.rate_limit))
        _limits.check(self)

    @classmethod
    def build(cls, caller, options, base=None):
        """Validate keyword ``options`` (rejecting unknown names) over ``base``."""
        unknown = sorted(set(options) - set(cls.NAMES))
        if unknown:
            raise TypeError(
                f"{caller}() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"it accepts {', '.join(cls.NAMES)}"
            )
        return replace(base, **options) if base else cls(**options)

    def stored(self):
        """The options the worker needs, as stored on the row (defaults left out)."""
        keys = ("timeout", "soft_timeout", "retry_delay", "backoff", "max_retry_delay")
        stored = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        if self.isolated:
            stored["isolated"] = True
        if self.failed_ttl is not FROM_SETTING:
            stored["failed_ttl"] = self.failed_ttl  # None (keep until deleted) is stored too
        if self.rate_limit is not None:
            stored["rate_limit"] = list(self.rate_limit)  # with the call's rate_key (enqueue)
        return stored


def failed_expiry(stored_options, now):
    """When a task that failed for good is deleted: ``now`` + its failed_ttl; None keeps it."""
    # Not .get(key, conf.FAILED_TTL): the setting is read (and validated) only when it applies.
    ttl = stored_options["failed_ttl"] if "failed_ttl" in stored_options else conf.FAILED_TTL  # noqa: SIM401
    return None if ttl is None else now + timedelta(seconds=ttl)


TaskOptions.NAMES = tuple(f.name for f in fields(TaskOptions))  # the one list of option names


def function_path(func):
    """Return the dotted path a worker imports ``func`` by, or raise if it has none."""
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
        raise InvalidTaskOptions(
            f"{qualname or func!r} cannot be a task: a worker imports tasks by name, so define it "
            "at module level in an importable module (not __main__, not inside a function)"
        )
    return f"{module}.{qualname}"
