"""The handle on a stored task: every property reads the current row."""

import time

from django.utils import timezone

from .. import serialization
from ..conf import conf
from ..task import DONE, FINISHED, STATUS_NAMES

_FIELDS = ("status", "result", "error_message", "traceback", "attempts")


class DelayedTask:
    """A handle on a stored task; every property reads the current row.

    A task whose row is gone (deleted after its ttl) reads as ``status``
    None, ``ready`` None and ``result`` None; nothing raises.
    """

    def __init__(self, pk, using=None):
        self.pk = pk
        self.using = using or conf.DATABASE

    def __repr__(self):
        return f"<DelayedTask {self.pk}>"

    def __eq__(self, other):
        return isinstance(other, DelayedTask) and (other.pk, other.using) == (self.pk, self.using)

    def __hash__(self):
        return hash((self.pk, self.using))

    def _row(self, *fields):
        # Not at the top: the decorators import this module and must stay importable
        # without 'autotask' in INSTALLED_APPS, so that check autotask.E012 can say so.
        from ..models import TaskQueue

        return TaskQueue.objects.using(self.using).filter(pk=self.pk).values(*fields).first()

    def _field(self, name, default=None):
        row = self._row(name)
        return default if row is None else row[name]

    @property
    def status(self):
        """WAITING, RUNNING, DONE, ERROR or CANCELLED; None when the row is gone."""
        return self._field("status")

    @property
    def status_name(self):
        """The status as a word (``"waiting"``, ``"done"``, …); None when the row is gone."""
        return STATUS_NAMES.get(self.status)

    @property
    def ready(self):
        """True once finished (DONE, ERROR, CANCELLED), False before, None when gone."""
        status = self.status
        return None if status is None else status in FINISHED

    @property
    def result(self):
        """The return value once DONE, else None."""
        row = self._row("status", "result")
        if row is None or row["status"] != DONE or row["result"] is None:
            return None
        return serialization.decode_value(row["result"])

    @property
    def error_message(self):
        """``str(exception)`` of the last failure, '' if none."""
        return self._field("error_message", "")

    @property
    def traceback(self):
        """The formatted traceback of the last failure, '' if none."""
        return self._field("traceback", "")

    @property
    def attempts(self):
        """How many times a worker has started this task."""
        return self._field("attempts", 0)

    def wait(self, timeout=None, interval=0.05):
        """Block until the task has finished; return False if ``timeout`` ran out first.

        A task whose row is gone counts as finished.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.ready is not False:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval if deadline is None else max(0, min(interval, deadline - time.monotonic())))

    def cancel(self):
        """Cancel the task if it has not started; return True if it was cancelled."""
        from ..models import TaskQueue  # not at the top: see _row

        return TaskQueue.objects.using(self.using).filter(pk=self.pk).cancel_waiting(timezone.now()) == 1
