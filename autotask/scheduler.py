"""Periodic and cron tasks: registration and exactly-once occurrences."""


def tick(using, now):
    """Enqueue every due occurrence; return seconds until the next one (or None)."""
    return None


class PeriodicFactory:
    POSITIONAL = ("seconds", "start_now")

    def __init__(self, caller, options):
        raise NotImplementedError("periodic_task is not available yet")


class CronFactory:
    POSITIONAL = ()

    def __init__(self, caller, options):
        raise NotImplementedError("cron_task is not available yet")
