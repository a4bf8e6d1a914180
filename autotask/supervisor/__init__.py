"""The worker beside each Django process: start it, restart it, end it with its parent.

With ``AUTOTASK_IS_ACTIVE`` every Django process that serves (a WSGI/ASGI
server worker, ``runserver``, a script calling ``django.setup()``) gets one
``run_autotask`` child process, watched by a monitor thread that restarts it
whenever it exits.

Parent and child share a socket pair.  The parent writes a byte to wake the
child after it has enqueued tasks (so a local worker starts them at once,
on SQLite too), and when the parent ends in any way, SIGKILL included, the
kernel closes the parent's end: the child reads end-of-file and stops.  On
Linux the child also asks the kernel for a signal when its parent dies
(``PR_SET_PDEATHSIG``).  A worker whose Django process is gone lets its
running tasks finish for ``AUTOTASK_ORPHAN_GRACE_SECONDS`` and then exits
(the child's side is :mod:`autotask.worker.parent`).
"""

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from django.core.exceptions import ImproperlyConfigured

from .. import enqueue
from ..conf import conf
from ..worker.parent import ENV_CHILD, ENV_FD, ENV_PID

logger = logging.getLogger("autotask")

# Management commands that do not serve, so get no worker; AUTOTASK_NON_SERVING_COMMANDS adds to these.
NON_SERVING_COMMANDS = frozenset(
    {
        # Django
        "changepassword", "check", "clearsessions", "collectstatic", "compilemessages",
        "createcachetable", "createsuperuser", "dbshell", "diffsettings", "dumpdata", "findstatic",
        "flush", "help", "inspectdb", "loaddata", "makemessages", "makemigrations", "migrate",
        "optimizemigration", "ogrinspect", "ping_google", "remove_stale_contenttypes",
        "sendtestemail", "shell", "showmigrations", "sqlflush", "sqlmigrate", "sqlsequencereset",
        "squashmigrations", "startapp", "startproject", "test", "testserver", "version",
        # common third-party commands
        "shell_plus", "show_urls", "graph_models", "reset_db", "validate_templates",
        # autotask's own: the worker itself and the operations commands
        "run_autotask", "autotask_status", "autotask_clean",
    }
)  # fmt: skip
# Commands whose autoreloader runs the server in a child process marked by an environment variable.
RELOADING_COMMANDS = {"runserver": "RUN_MAIN", "runserver_plus": "WERKZEUG_RUN_MAIN"}

STABLE_SECONDS = 60.0  # a worker that ran this long before it exited was not crash-looping
MAX_RESTART_DELAY = 60.0  # seconds: the longest back-off between restarts of a worker that keeps dying
MIN_MONITOR_INTERVAL = 0.05  # seconds: a zero AUTOTASK_WORKER_MONITOR_INTERVALL must not spin

_lock = threading.Lock()
_current = None  # the Supervisor of this process
_master_pid = None  # in a pre-fork server's master: the pid whose forked children start their own
_hooks_installed = False


# -- which processes get a worker ---------------------------------------------


def management_command():
    """Return (command, argv) of the management command this process runs, or None."""
    from django.core.management import ManagementUtility

    code = ManagementUtility.execute.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            argv = frame.f_locals["self"].argv
            return (argv[1] if len(argv) > 1 else "help"), argv
        frame = frame.f_back
    return None


def serves():
    """Return True when this process should have a worker beside it."""
    if not conf.IS_ACTIVE or not conf.WORKER_AUTOSTART:
        return False
    if ENV_FD in os.environ or ENV_CHILD in os.environ:
        return False  # this process is a supervised worker, or a worker's child process
    if "pytest" in sys.modules:
        return False  # a test run: tests start the workers they need
    found = management_command()
    if found is None:
        return True  # a WSGI/ASGI server worker or a script calling django.setup()
    command, argv = found
    if command in NON_SERVING_COMMANDS or command in set(conf.NON_SERVING_COMMANDS or ()):
        return False
    if command in RELOADING_COMMANDS:
        # The autoreloader's outer process only restarts the serving child.
        return os.environ.get(RELOADING_COMMANDS[command]) == "true" or "--noreload" in argv
    return True


def in_prefork_master():
    """Return True in a pre-fork server's master, which loads the app and then forks workers."""
    try:
        import uwsgi
    except ImportError:
        pass
    else:
        return uwsgi.worker_id() == 0
    in_arbiter = False
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename.replace(os.sep, "/")
        if "/gunicorn/" in filename:
            if "/gunicorn/workers/" in filename or frame.f_code.co_name == "spawn_worker":
                return False  # loading the app inside a forked worker (no --preload)
            in_arbiter = in_arbiter or filename.endswith("/gunicorn/arbiter.py")
        frame = frame.f_back
    return in_arbiter


# -- what the child runs ------------------------------------------------------


def worker_executable():
    """Return the interpreter a worker runs with; raise ImproperlyConfigured when unusable."""
    from django.conf import settings

    value = conf.WORKER_EXECUTABLE
    if value in (None, ""):
        path, origin = _running_interpreter(), "the running interpreter"
    else:
        try:
            value = os.fspath(value)
        except TypeError:
            raise ImproperlyConfigured(f"AUTOTASK_WORKER_EXECUTABLE must be a path, not {value!r}") from None
        origin = f"AUTOTASK_WORKER_EXECUTABLE = {value!r}"
        if os.sep in value or (os.altsep and os.altsep in value):
            # Relative paths are relative to BASE_DIR, as the original documented.
            base = getattr(settings, "BASE_DIR", None) or os.getcwd()
            path = os.path.join(os.fspath(base), value)
        else:
            path = shutil.which(value) or value
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise ImproperlyConfigured(
            f"the worker executable {path!r} ({origin}) does not exist or is not executable; "
            "set AUTOTASK_WORKER_EXECUTABLE to the Python interpreter of this project "
            "(absolute, or relative to BASE_DIR)"
        )
    return path


def _running_interpreter():
    if "uwsgi" in sys.modules:
        # Under uWSGI sys.executable is the uwsgi binary, not Python.
        for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3", "python"):
            candidate = os.path.join(sys.prefix, "bin", name)
            if os.path.isfile(candidate):
                return candidate
        return ""
    return sys.executable


def _import_path():
    """Return the sys.path entries of this process that are not the interpreter's own."""
    own = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    entries = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.curdir)
        if path in entries or any(path == p or path.startswith(p + os.sep) for p in own):
            continue
        entries.append(path)
    return entries


def worker_command():
    """Return (argv, env, cwd) to start the worker of this process with."""
    from django.conf import settings

    module = getattr(settings, "SETTINGS_MODULE", None)
    if not module:
        raise ImproperlyConfigured(
            "settings were configured in code (settings.configure()), so a worker process "
            "cannot load them; use DJANGO_SETTINGS_MODULE or run 'manage.py run_autotask' yourself"
        )
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = module
    env["PYTHONPATH"] = os.pathsep.join(_import_path())
    for name in RELOADING_COMMANDS.values():
        env.pop(name, None)
    return [worker_executable(), "-m", "django", "run_autotask"], env, os.getcwd()


# -- the parent's side ----------------------------------------------------------


class Supervisor:
    """Keep one ``run_autotask`` child running beside this process."""

    def __init__(self, command, env, cwd, using=None):
        self.command, self.env, self.cwd = command, env, cwd
        self.using = using or conf.DATABASE
        self.pid = os.getpid()  # the owner; a forked copy never touches the child
        self.child = None
        self.link = None  # our end of the socket pair with the current child
        self.started_at = 0.0
        self.quick_deaths = 0  # consecutive exits soon after a start
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._monitor, name="autotask-supervisor", daemon=True)

    @property
    def interval(self):
        return max(MIN_MONITOR_INTERVAL, float(conf.WORKER_MONITOR_INTERVALL))

    def start(self):
        atexit.register(self.stop)
        # The monitor thread starts every child: PR_SET_PDEATHSIG fires when the
        # thread that started a process ends, and this thread lives as long as we do.
        self.thread.start()
        return self

    def stop(self):
        """Let the worker finish its running tasks and exit; called at interpreter exit."""
        if os.getpid() != self.pid:
            return
        self.stopping.set()
        with self.lock:
            if self.link is not None:
                self.link.close()  # the child reads end-of-file and stops gracefully
                self.link = None

    def wake(self):
        """Tell the worker that tasks were enqueued."""
        with self.lock:
            if self.link is None:
                return
            try:
                self.link.send(b"\0")
            except OSError:
                pass  # the buffer is full (a wake-up is pending) or the child is gone

    def forget(self):
        """Drop this forked copy's handle on the parent's child (called in a forked process)."""
        if self.link is not None:
            self.link.close()
            self.link = None

    def _monitor(self):
        delay = 0.0
        try:
            while not self.stopping.wait(delay):
                error = self._spawn()
                if error is None:
                    delay = self._watch()
                elif self.child is None:
                    logger.error(
                        "cannot start the autotask worker %s: %s; no worker runs beside process %s "
                        "('manage.py check' reports the setting to fix)",
                        self.command[0],
                        error,
                        os.getpid(),
                    )
                    return
                else:
                    # It ran before: the interpreter may be mid-replacement by a deploy.
                    delay = MAX_RESTART_DELAY
                    logger.error("cannot restart the autotask worker: %s; retrying in %.0fs", error, delay)
        except Exception:
            logger.exception("the autotask supervisor stopped; no worker will be restarted")

    def _spawn(self):
        """Start a child; return None, or the OSError that prevented it."""
        with self.lock:
            if self.stopping.is_set():
                return None
            parent_end, child_end = socket.socketpair()
            env = {**self.env, ENV_FD: str(child_end.fileno()), ENV_PID: str(os.getpid())}
            try:
                self.child = subprocess.Popen(
                    self.command,
                    cwd=self.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    pass_fds=[child_end.fileno()],
                )
            except OSError as exc:
                parent_end.close()
                return exc
            finally:
                child_end.close()
            parent_end.setblocking(False)
            if self.link is not None:
                self.link.close()
            self.link = parent_end
            self.started_at = time.monotonic()
        logger.info("started autotask worker (pid %s) beside process %s", self.child.pid, os.getpid())
        return None

    def _watch(self):
        """Check the child every interval until it exits; return the delay before the restart."""
        while not self.stopping.wait(self.interval):
            code = self.child.poll()
            if code is not None:
                return self._restart_delay(code)
        return 0.0

    def _restart_delay(self, code):
        ran = time.monotonic() - self.started_at
        self.quick_deaths = self.quick_deaths + 1 if ran < STABLE_SECONDS else 0
        delay = (
            min(MAX_RESTART_DELAY, self.interval * 2 ** (self.quick_deaths - 1)) if self.quick_deaths else 0.0
        )
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
        log = logger.error if self.quick_deaths >= 3 else logger.warning
        log(
            "autotask worker (pid %s) exited with %s after %.1fs; restarting it in %.1fs",
            self.child.pid,
            how,
            ran,
            delay,
        )
        return delay


def start():
    """Start the supervisor of this process (once); return it, or None if it cannot run."""
    global _current
    with _lock:
        if _current is not None and _current.pid == os.getpid():
            return _current
        try:
            command, env, cwd = worker_command()
        except ImproperlyConfigured as exc:
            logger.error("no autotask worker runs beside process %s: %s", os.getpid(), exc)
            return None
        logger.info("starting an autotask worker beside process %s", os.getpid())
        _current = Supervisor(command, env, cwd).start()
        return _current


def current():
    """Return this process's running Supervisor, or None."""
    supervisor = _current
    return supervisor if supervisor is not None and supervisor.pid == os.getpid() else None


def wake(alias):
    """Wake this process's own worker after a commit that enqueued runnable tasks."""
    supervisor = current()
    if supervisor is not None and alias == supervisor.using:
        supervisor.wake()


def autostart():
    """Start a worker beside this process if it serves (called by AppConfig.ready())."""
    global _master_pid
    if not serves():
        return None
    _install_hooks()
    if in_prefork_master():
        # Threads do not survive fork(): each forked server worker starts its own.
        _master_pid = os.getpid()
        return None
    return start()


def _install_hooks():
    global _hooks_installed
    if _hooks_installed:
        return
    from django.core.signals import request_started

    _hooks_installed = True
    enqueue.local_wakeups.append(wake)
    os.register_at_fork(after_in_child=_after_fork)
    # uWSGI forks without running Python's fork hooks: start on the first request there.
    request_started.connect(_on_request, dispatch_uid="autotask.supervisor")


def _after_fork():
    global _lock, _current, _master_pid
    _lock = threading.Lock()  # another thread may have held it at fork time
    inherited, _current = _current, None
    if inherited is not None:
        inherited.forget()  # the child belongs to the parent; its end-of-file must not wait for us
    if _master_pid is None:
        return
    if in_prefork_master():
        _master_pid = os.getpid()  # the master forked itself (gunicorn --daemon)
    elif os.getppid() == _master_pid:
        start()


def _on_request(**kwargs):
    if _master_pid is not None and current() is None and os.getpid() != _master_pid:
        start()
