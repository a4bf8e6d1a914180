"""A supervised worker's side of the link to the Django process that started it."""

import ctypes
import logging
import os
import signal
import socket
import sys

logger = logging.getLogger("autotask")

# How a supervised worker finds its Django process (set only in the child's environment).
ENV_FD = "AUTOTASK_SUPERVISOR_FD"  # the child's end of the socket pair
ENV_PID = "AUTOTASK_SUPERVISOR_PID"  # the Django process's pid
# Set in a worker's child processes (process mode): no worker is started beside them.
ENV_CHILD = "AUTOTASK_TASK_CHILD"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_DEATH_SIGNAL = signal.SIGUSR2  # not SIGTERM: a second SIGTERM means "stop at once"


class ParentLink:
    """A supervised worker's end of the socket its Django process holds."""

    def __init__(self, sock, parent_pid):
        self.sock = sock
        self.parent_pid = parent_pid

    @classmethod
    def from_environ(cls):
        """Return the link set up by a supervisor, or None for a standalone worker."""
        fd, pid = os.environ.pop(ENV_FD, None), os.environ.pop(ENV_PID, None)
        if not fd:
            return None
        try:
            sock = socket.socket(fileno=int(fd))
        except (ValueError, OSError) as exc:
            logger.warning("ignoring %s=%r: %s", ENV_FD, fd, exc)
            return None
        sock.set_inheritable(False)  # task code's subprocesses must not keep the parent alive
        sock.setblocking(False)
        return cls(sock, int(pid or 0))

    def fileno(self):
        return self.sock.fileno()

    def watch(self, on_gone):
        """Call ``on_gone`` when the parent dies (signal on Linux), or now if it already has."""
        if _set_parent_death_signal(PARENT_DEATH_SIGNAL):
            signal.signal(PARENT_DEATH_SIGNAL, lambda signum, frame: on_gone())
        if self.parent_pid and os.getppid() != self.parent_pid:
            on_gone()  # the parent died before the signal was armed

    def receive(self):
        """Consume wake-ups; return False once the parent has gone (end of file)."""
        try:
            while self.sock.recv(4096):
                logger.debug("woken by the Django process that enqueued tasks")
        except BlockingIOError:
            return True
        except OSError:
            pass
        return False

    def close(self):
        self.sock.close()


def _set_parent_death_signal(signum):
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
