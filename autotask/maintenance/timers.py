"""When each periodic duty of a worker is next due."""

import time

from ..conf import conf


class Timers:
    """When each periodic duty of a worker is next due (monotonic seconds)."""

    def __init__(self):
        now = time.monotonic()
        # Everything runs once at start-up: a restarted worker recovers at once.
        self.next = {"heartbeat": now, "recover": now, "prune": now, "schedule": now, "admit": now}

    @staticmethod
    def interval(name):
        lease = conf.LEASE_SECONDS
        return {
            "heartbeat": lease / 3,  # renew leases well before they lapse
            "recover": lease / 2,
            "prune": conf.CLEAN_INTERVALL,
            "schedule": 1.0,
            "admit": 1.0,  # HELD tasks of concurrency keys (autotask.db.flow): a sweep
        }[name]

    def due(self, now):
        names = [name for name, at in self.next.items() if at <= now]
        for name in names:
            self.next[name] = now + self.interval(name)
        return names

    def set_next(self, name, at):
        self.next[name] = at

    def seconds_to_next(self):
        return max(0.0, min(self.next.values()) - time.monotonic())
