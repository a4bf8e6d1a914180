"""The worker: the loop, the executor that runs one task, the link to its Django process."""

__all__ = ["Worker", "run_worker"]


def __getattr__(name):
    # Loaded on first use, not with the package: autotask.worker.parent (which
    # the supervisor imports for its constants) must import without Django's
    # models, and the loop imports them.
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
