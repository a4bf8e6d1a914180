"""Task definitions: validated options, the name → definition registry, imports by name."""

import importlib
import inspect
import logging
import numbers
import sys
from dataclasses import dataclass, fields, replace
from datetime import timedelta

from .exceptions import InvalidTaskOptions, NotADeclaredTask, TaskFunctionNotFound

logger = logging.getLogger("autotask")

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
    timeout: float | None = None  # seconds; honoured for async functions (see README)
    retry_delay: float | None = None  # None: AUTOTASK_RETRY_DELAY
    backoff: float | None = None  # None: AUTOTASK_RETRY_BACKOFF
    max_retry_delay: float | None = None  # None: AUTOTASK_RETRY_MAX_DELAY
    # Seconds a failed (ERROR) task is kept; None: until deleted by hand.
    failed_ttl: float | _FromSetting | None = FROM_SETTING

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
        set_(self, "retry_delay", _number("retry_delay", self.retry_delay, allow_none=True))
        set_(self, "backoff", _number("backoff", self.backoff, minimum=1.0, allow_none=True))
        set_(self, "max_retry_delay", _number("max_retry_delay", self.max_retry_delay, allow_none=True))
        if self.failed_ttl is not FROM_SETTING:
            set_(self, "failed_ttl", _number("failed_ttl", self.failed_ttl, allow_none=True))

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
        keys = ("timeout", "retry_delay", "backoff", "max_retry_delay")
        stored = {key: getattr(self, key) for key in keys if getattr(self, key) is not None}
        if self.failed_ttl is not FROM_SETTING:
            stored["failed_ttl"] = self.failed_ttl  # None (keep until deleted) is stored too
        return stored


def failed_expiry(stored_options, now):
    """When a task that failed for good is deleted: ``now`` + its failed_ttl; None keeps it."""
    from .conf import conf

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


_registry = {}
_declared_inactive = {}  # name -> definition declared while AUTOTASK_IS_ACTIVE was false
_unenforced_timeouts = {}  # name -> timeout set on a sync function (nothing enforces it)

DECLARE_HINT = (
    "a worker runs only functions declared as tasks in code: decorate it with "
    "@delayed_task, @periodic_task or @cron_task, or with Django's @task and enqueue it "
    "through autotask's backend"
)


def register(definition):
    _registry[definition.name] = definition
    _note_timeout(definition)
    # The system checks must exist even when 'autotask' is missing from
    # INSTALLED_APPS (its ready() is what imports them otherwise): one of them
    # reports exactly that.
    from . import checks  # noqa: F401


def declare_inactive(func, make):
    """Note a task declared while ``AUTOTASK_IS_ACTIVE`` is false.

    The decorator returns ``func`` unchanged and stores nothing, but a worker
    started by hand still knows the function is a declared task, and the
    system checks know what was declared.  ``make(name)`` builds the definition.
    """
    try:
        name = function_path(func)
    except InvalidTaskOptions:
        return  # no importable name: nothing could ever name it in a row
    definition = make(name)
    _declared_inactive[name] = definition
    _note_timeout(definition)


def declared_inactive():
    """Return the definitions declared while ``AUTOTASK_IS_ACTIVE`` was false, by name."""
    return dict(_declared_inactive)


def note_timeout(name, func, options):
    """Remember ``name`` when ``options.timeout`` is set on a sync function (nothing enforces it)."""
    if options.timeout is None or is_async(func):
        return
    if name not in _unenforced_timeouts:
        _unenforced_timeouts[name] = options.timeout
        logger.warning(
            "%s has timeout=%g but is not an async function: nothing enforces a timeout on a "
            "sync task, it runs to the end (autotask.W042)",
            name,
            options.timeout,
            extra={"function": name},
        )


def _note_timeout(definition):
    spec = getattr(definition, "spec", None)  # a periodic/cron task's
    options = getattr(definition, "options", None) or getattr(spec, "options", None)
    if options is not None:
        note_timeout(definition.name, definition.func, options)


def unenforced_timeouts():
    """Return {task name: timeout} for sync tasks declared with a timeout."""
    return dict(_unenforced_timeouts)


def _declared(name):
    return _registry.get(name) or _declared_inactive.get(name)


def get(name):
    """Return the declared task called ``name``, importing its module if needed.

    Importing the module runs its decorators, which declare its tasks.  Only a
    declared task is returned: a registered definition, or a task of Django's
    tasks framework.  Anything else the name reaches (a builtin, a function
    of the standard library, an undecorated function, a class) raises
    :class:`NotADeclaredTask`, so that nobody who can write a row can make a
    worker call it.
    """
    definition = _declared(name)
    if definition is not None:
        return definition
    target = import_by_path(name)
    definition = _declared(name)
    if definition is not None:
        return definition
    if _is_framework_task(target):
        return target  # declared by the framework's @task decorator
    raise NotADeclaredTask(f"{name} is not a declared task ({_describe(target)}); {DECLARE_HINT}")


def _is_framework_task(target):
    if not ({"django.tasks", "django_tasks"} & sys.modules.keys()):
        return False  # no tasks framework loaded, so no framework task exists
    try:
        from .backend import is_framework_task
    except ImportError:
        return False
    return is_framework_task(target)


def _describe(target):
    if inspect.isclass(target):
        return f"a class, {target.__module__}.{target.__qualname__}"
    if inspect.isbuiltin(target):
        return "a builtin function"
    if inspect.ismodule(target):
        return "a module"
    if callable(target):
        return "a function not decorated as a task"
    return f"not callable: {type(target).__name__}"


def import_by_path(path):
    """Import ``package.module.Class.function`` (any depth of qualname).

    A module of the standard library that is not imported yet is never
    imported for a row: it declares no tasks, and some run code on import
    (``antigravity`` opens a browser, ``this`` prints).
    """
    parts = path.split(".")
    if parts[0] in sys.stdlib_module_names and parts[0] not in sys.modules:
        raise NotADeclaredTask(
            f"{path} is not a declared task: {parts[0]} is a module of the standard library, "
            f"which declares no tasks, so it is not imported for a row; {DECLARE_HINT}"
        )
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that prefix is not a module; try a shorter one
            raise TaskFunctionNotFound(f"importing {module_name} for {path} failed: {exc}") from exc
        except Exception as exc:  # an import error inside user code
            raise TaskFunctionNotFound(f"importing {module_name} for {path} failed: {exc!r}") from exc
        try:
            for attr in parts[split:]:
                target = getattr(target, attr)
        except AttributeError:
            raise TaskFunctionNotFound(
                f"{path} not found: module {module_name} has no {'.'.join(parts[split:])}"
            ) from None
        return target
    raise TaskFunctionNotFound(f"{path} not found: no importable module in that path")


def callable_of(target):
    """Return the plain function behind a registered definition or a raw function."""
    func = getattr(target, "func", target)
    if not callable(func):
        raise TaskFunctionNotFound(f"{target!r} is not callable")
    return func


def is_async(func):
    return inspect.iscoroutinefunction(func)


def all_definitions():
    return dict(_registry)
