"""Task definitions: the name → definition registry, imports by name."""

import importlib
import inspect

from ..exceptions import TaskFunctionNotFound

_registry = {}


def register(definition):
    _registry[definition.name] = definition
    # The system checks must exist even when 'autotask' is missing from
    # INSTALLED_APPS (its ready() is what imports them otherwise): one of them
    # reports exactly that.
    from .. import checks  # noqa: F401


def get(name):
    """Return the registered definition called ``name``, importing its module if needed."""
    if name in _registry:
        return _registry[name]
    target = import_by_path(name)
    return _registry.get(name, target)


def import_by_path(path):
    """Import ``package.module.Class.function`` (any depth of qualname)."""
    parts = path.split(".")
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
