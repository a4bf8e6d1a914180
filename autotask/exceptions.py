"""Exceptions raised by autotask; each also derives from the stdlib error it refines."""


class AutotaskError(Exception):
    """Base class of every autotask error."""


class InvalidTaskOptions(AutotaskError, ValueError):
    """A decorator or call-site option is malformed (raised at import/call time)."""


class SerializationError(AutotaskError, TypeError):
    """A value cannot be stored by the configured serializer (nothing was stored)."""


class CorruptPayload(AutotaskError, ValueError):
    """A stored payload cannot be decoded (recorded on the task, never raised in the worker loop)."""


class TaskFunctionNotFound(AutotaskError, LookupError):
    """The worker cannot import the function a task names."""


class NotADeclaredTask(TaskFunctionNotFound):
    """A row names something that is not declared as a task in code; no worker calls it."""


class TaskTimeout(AutotaskError, TimeoutError):
    """A task ran longer than its ``timeout``."""


class TimeLimitExceeded(TaskTimeout):
    """A task ran past its hard limit (``timeout``): its child process was killed."""


class SoftTimeLimitExceeded(TaskTimeout):
    """Raised inside a task that ran past its ``soft_timeout``: clean up and return, or re-raise."""


class ChildProcessDied(AutotaskError, RuntimeError):
    """The child process running a task died (killed, crashed, exited) before it reported."""


class TaskStopped(AutotaskError):
    """A running task was asked to stop (``CurrentTask.raise_if_stopped``); it ends CANCELLED."""


class WorkerLost(AutotaskError, RuntimeError):
    """The worker running a task vanished before recording an outcome."""


class InvalidQueueName(AutotaskError, ValueError):
    """A queue name that no task can carry (empty, too long, with a comma or spaces)."""


class ScheduleNotFound(AutotaskError, LookupError):
    """No periodic or cron schedule of that name is stored or declared."""
