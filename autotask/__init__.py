"""autotask: background tasks for Django that need nothing but its database."""

__version__ = "1.0.0.dev0"

# Loaded on first use: importing autotask must not need Django's apps to be ready.
_PAUSES = ("pause_queue", "resume_queue", "pause_schedule", "resume_schedule")
_WORKFLOWS = ("chain", "group", "WorkflowHandle")


def __getattr__(name):
    if name == "current_task":
        from .context import current_task

        return current_task
    if name in _WORKFLOWS:
        from .enqueue import workflows

        return getattr(workflows, name)
    if name in _PAUSES:
        from .maintenance import pauses

        return getattr(pauses, name)
    raise AttributeError(f"module 'autotask' has no attribute {name!r}")


def __dir__():
    return [*globals(), *_PAUSES, *_WORKFLOWS, "current_task"]
