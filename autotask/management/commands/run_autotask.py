"""``manage.py run_autotask``: a standalone worker."""

import sys

from django.core.management.base import BaseCommand, CommandError

from ...conf import conf
from ...worker import Worker
from .. import non_negative_int, positive_int


class Command(BaseCommand):
    help = "Run an autotask worker until SIGTERM/SIGINT (twice: at once)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--queues",
            "-q",
            default=None,
            help="Comma-separated queues to serve (default: AUTOTASK_QUEUES, else all).",
        )
        parser.add_argument(
            "--concurrency",
            "-c",
            type=positive_int,
            default=None,
            help="Tasks to run at once, in threads (default: AUTOTASK_CONCURRENCY, 1).",
        )
        parser.add_argument(
            "--async-concurrency",
            type=non_negative_int,
            default=None,
            help="async def tasks to run at once on the worker's event loop, beside the threads "
            "(default: AUTOTASK_ASYNC_CONCURRENCY, 100; 0: each takes a thread).",
        )
        parser.add_argument(
            "--processes",
            "-p",
            type=positive_int,
            default=None,
            help="Process mode: run every task in one of N child processes, recycled and replaced "
            "(default: AUTOTASK_PROCESSES; unset: threads).",
        )
        parser.add_argument(
            "--drain",
            action="store_true",
            help="Run until no task is due, then exit (for cron jobs and tests).",
        )
        parser.add_argument(
            "--idle-time",
            type=float,
            default=None,
            help="Seconds between polls when idle (default: AUTOTASK_HANDLE_TASK_IDLE_TIME).",
        )
        parser.add_argument("--no-listen", action="store_true", help="Do not LISTEN (PostgreSQL); poll only.")
        parser.add_argument("--database", default=None, help="Database alias (default: AUTOTASK_DATABASE).")

    def handle(self, *args, **options):
        queues = options["queues"]
        if queues is not None:
            queues = [q.strip() for q in queues.split(",") if q.strip()]
            if not queues:
                raise CommandError("--queues needs at least one queue name")
        if options["processes"] and options["concurrency"] and options["concurrency"] != options["processes"]:
            raise CommandError(
                "--concurrency and --processes disagree: in process mode a worker runs as many tasks "
                "at once as it has child processes; give --processes alone"
            )
        if options["idle_time"] is not None and options["idle_time"] < 0:
            raise CommandError("--idle-time must be >= 0")
        worker = Worker(
            queues=queues,
            concurrency=options["concurrency"],
            async_concurrency=options["async_concurrency"],
            drain=options["drain"],
            idle_time=options["idle_time"],
            listen=False if options["no_listen"] else conf.LISTEN,
            using=options["database"],
            identify=True,
            processes=options["processes"],
        )
        sys.exit(worker.run())
