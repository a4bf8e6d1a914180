"""Task definitions: the name → definition registry, imports by name."""

import importlib
import inspect
import logging
import sys
from typing import Any

import django

from ..exceptions import InvalidTaskOptions, NotADeclaredTask, TaskFunctionNotFound
from .options import function_path

logger = logging.getLogger("autotask")

# The module of the tasks framework's Task class, as autotask.backend.framework imports it.
FRAMEWORK_BASE = "django.tasks.base" if django.VERSION >= (6, 0) else "django_tasks.base"


_registry: dict[str, Any] = {}
_declared_inactive: dict[str, Any] = {}  # name -> definition declared while AUTOTASK_IS_ACTIVE was false
_unenforced_timeouts: dict[str, Any] = {}  # name -> time limit set on a sync function not isolated

DECLARE_HINT = (
    "a worker runs only functions declared as tasks in code: decorate it with "
    "@delayed_task, @periodic_task or @cron_task, or with Django's @task and enqueue it "
    "through autotask's backend"
)


# Whether an ``async def`` task was declared in this process: a worker's event
# loop offers its slots to claims from then on (autotask.worker.aio).
async_declared = False


def register(definition):
    global async_declared
    _registry[definition.name] = definition
    if not async_declared and is_async(getattr(definition, "func", None)):
        async_declared = True
    _note_timeout(definition)
    # The system checks must exist even when 'autotask' is missing from
    # INSTALLED_APPS (its ready() is what imports them otherwise): one of them
    # reports exactly that.
    from .. import checks  # noqa: F401


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
    """Remember ``name`` when a time limit is set on a sync function not declared ``isolated``.

    Only a child process can stop a sync function: such a task runs in one
    (process mode, or ``isolated=True``).  The system check autotask.E070
    asks for that choice to be made explicit, unless AUTOTASK_PROCESSES is
    set; a worker in thread mode runs the task in a child process anyway.
    """
    limit = options.timeout if options.timeout is not None else options.soft_timeout
    if limit is None or options.isolated or is_async(func):
        return
    _unenforced_timeouts.setdefault(name, limit)


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
    # The Task class of the framework autotask.backend uses (django.tasks from
    # Django 6.0, else the backport), read from sys.modules: no framework
    # loaded, no framework task exists, and the backend (a layer above) is not
    # imported for it.
    base = sys.modules.get(FRAMEWORK_BASE)
    return base is not None and isinstance(target, base.Task)


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
