"""Framework tasks declared with periodic= or cron=, handed to autotask's schedules."""

import inspect
from functools import partial

from ..definitions import schedules
from ..exceptions import InvalidTaskOptions
from .framework import EXTRA_OPTIONS, InvalidTask, _given


def _schedule_spec(task, backend):
    """Return the scheduler's spec for a task declaring ``periodic``/``cron``, else None."""
    periodic, cron = getattr(task, "periodic", None), getattr(task, "cron", None)
    tz, start_now = getattr(task, "timezone", None), getattr(task, "start_now", False)
    if periodic is None and cron is None:
        if tz is not None or start_now:
            raise InvalidTask("timezone and start_now need a schedule: give periodic= or cron= as well.")
        return None
    if periodic is not None and cron is not None:
        raise InvalidTask("Give either periodic= (seconds) or cron= (an expression), not both.")
    _check_no_arguments(task)
    run = _run_options(task, backend)
    try:
        if periodic is not None:
            if tz is not None:
                raise InvalidTaskOptions("timezone applies to cron= schedules only")
            factory = schedules.PeriodicFactory("task", {"seconds": periodic, "start_now": start_now, **run})
        else:
            if start_now:
                raise InvalidTaskOptions("start_now applies to periodic= schedules only")
            options = {"cron": cron, **run}
            if tz is not None:
                options["timezone"] = tz
            factory = schedules.CronFactory("task", options)
    except (InvalidTaskOptions, TypeError, ValueError) as exc:
        raise InvalidTask(f"Invalid schedule for {task.module_path}: {exc}") from exc
    return factory.make_spec(task.module_path)


def _run_options(task, backend):
    """The options each scheduled run is stored with: the task's over its backend's OPTIONS."""
    if hasattr(backend, "options_for"):  # autotask's backend (not imported here: it imports this module)
        options = backend.options_for(task)
        return {key: getattr(options, key) for key in (*EXTRA_OPTIONS, "queue", "priority")}
    run = {key: getattr(task, key) for key in EXTRA_OPTIONS if _given(key, getattr(task, key, None))}
    return {**run, "queue": task.queue_name, "priority": task.priority}


def _check_no_arguments(task):
    func = partial(task.func, None) if task.takes_context else task.func
    try:
        inspect.signature(func).bind()
    except TypeError as exc:
        raise InvalidTask(
            f"A periodic or cron task runs without arguments, but {task.module_path} needs some: {exc}."
        ) from exc


def _register_schedule(task):
    """Hand a scheduled framework task to autotask's scheduler (once per declaration)."""
    spec = _schedule_spec(task, task.get_backend())
    if spec is None:
        return
    # The declaration (the module-level task, created first) registers; copies
    # made later by using() or by reading results must not replace its options.
    schedules.add(spec, replace=False)
