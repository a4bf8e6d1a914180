"""``manage.py autotask_status``: the queue at a glance, and a health check by exit code."""

import json
import re

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from ... import monitor
from ...conf import conf
from ...db import hint_for

UNHEALTHY = 1  # exit code when a health condition fails (argument errors exit with 2)

# Characters that steer a terminal rather than show: C0 and C1 controls, DEL,
# line/paragraph separators and the bidirectional overrides.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text):
    """``text`` with every terminal control character escaped visibly (ESC as ``\\x1b``)."""
    return _UNPRINTABLE.sub(_escape, str(text))


def _escape(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _seconds(value):
    number = float(value)
    if not number >= 0:  # also rejects NaN
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Show queue depth per queue and status, the oldest waiting task, failures in the last hour, "
        "workers alive and the next periodic/cron runs. Exits with 1 when no worker was seen "
        "recently or the oldest waiting task waited longer than --max-wait (a container health check)."
    )
    requires_system_checks: list[str] = []  # a health check must answer fast, and even when a check fails

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object for machines.")
        parser.add_argument(
            "--max-wait",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help="Unhealthy when the oldest due waiting task has waited longer than this.",
        )
        parser.add_argument(
            "--worker-timeout",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help=(
                "A worker is alive when its heartbeat is younger than this "
                f"(default: {monitor.ALIVE_LEASES} x AUTOTASK_LEASE_SECONDS)."
            ),
        )
        parser.add_argument(
            "--no-worker-check",
            action="store_true",
            help="Do not require a live worker (e.g. workers are started only on demand).",
        )
        parser.add_argument("--database", default=None, help="Database alias (default: AUTOTASK_DATABASE).")

    def handle(self, *args, **options):
        try:
            snap = monitor.snapshot(
                using=options["database"] or conf.DATABASE, worker_timeout=options["worker_timeout"]
            )
        except DatabaseError as exc:
            raise CommandError(f"cannot read the task tables: {exc}{hint_for(exc)}") from exc
        problems = snap.problems(max_wait=options["max_wait"], require_worker=not options["no_worker_check"])
        if options["json"]:
            activity = monitor.activity(options["database"] or conf.DATABASE)
            data = {**snap.as_dict(), **activity, "healthy": not problems, "problems": problems}
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self._print(snap, problems)
        if problems:
            raise SystemExit(UNHEALTHY)

    def _print_paused(self, snap, write, heading):
        paused = [("queue", p) for p in snap.paused["queues"]] + [
            ("schedule", p) for p in snap.paused["schedules"]
        ]
        if not paused:
            return
        heading(f"Paused: {len(paused)}")
        for kind, p in paused:
            by = f" by {p['paused_by']}" if p["paused_by"] else ""
            since = f" since {p['paused_at']:%Y-%m-%d %H:%M:%S %Z}" if p["paused_at"] else ""
            write(f"  {kind} {p['name']}{since}{by}")

    def _print_limits(self, snap, write, heading):
        concurrency, rates = snap.limits["concurrency"], snap.limits["rates"]
        if not concurrency and not rates:
            return
        heading(f"Limits: {len(concurrency)} concurrency key(s), {len(rates)} rate key(s)")
        for e in concurrency:
            write(
                f"  concurrency {e['key']}: running {e['running']}/{e['limit']}, "
                f"admitted {e['admitted']}, waiting for a slot {e['held']}"
            )
        for e in rates:
            started = f"{e['started_in_window']}/{e['limit']}"
            write(f"  rate {e['key']}: {started} started in the last {e['window']:g}s")

    def _print(self, snap, problems):
        # Every line carries stored data (queue, function, worker and schedule
        # names, errors): escape what would steer the terminal before styling.
        def write(line):
            self.stdout.write(printable(line))

        def heading(line):
            self.stdout.write(self.style.MIGRATE_HEADING(printable(line)))

        heading("Queues")
        names = list(snap.totals)
        if snap.depth:
            depth = {printable(queue): counts for queue, counts in snap.depth.items()}
            width = max(len("queue"), *(len(q) for q in depth))
            write("  " + "queue".ljust(width) + "".join(f"{n:>11}" for n in names))
            for queue, counts in depth.items():
                write("  " + queue.ljust(width) + "".join(f"{counts.get(n, 0):>11}" for n in names))
        else:
            write("  no tasks")
        oldest = snap.oldest_waiting
        if oldest:
            write(
                f"Oldest waiting task: {monitor.format_age(oldest['age'])} "
                f"(#{oldest['id']} {oldest['function']}, queue {oldest['queue']})"
            )
        else:
            write("Oldest waiting task: none due")
        write(f"Failures in the last hour: {snap.failures_last_hour}")
        if snap.stopping:
            write(f"Running tasks asked to stop: {snap.stopping}")
        finished = ", ".join(f"{count} {outcome}" for outcome, count in snap.finished_last_hour.items())
        write(f"Finished in the last hour: {finished}")
        database = snap.database
        if database:
            through = f", through a {database['pooler']} pooler" if database["pooler"] else ""
            wake = "poll" if database["listen"] == "poll" else f"LISTEN on {database['listen']!r}"
            write(f"Database: {database['alias']!r} ({database['vendor']}{through}); workers {wake}")
        alive = snap.workers_alive
        heading(f"Workers alive: {len(alive)} (heartbeat within {monitor.format_age(snap.worker_timeout)})")
        for w in alive:
            queues = w["queues"] or "all queues"
            seen = f"{w['last_seen']:%H:%M:%S}"
            write(f"  {w['worker_id']}  {queues}, concurrency {w['concurrency']}, last seen {seen}")
        heading("Next periodic/cron runs")
        if not snap.schedules:
            write("  none registered")
        for s in snap.schedules:
            when = (
                "MISSING (function gone from the code)"
                if s["missing"]
                else f"{s['next_run_at']:%Y-%m-%d %H:%M:%S %Z}"
            )
            if s["paused"]:
                when = "PAUSED"
            if s["overdue"]:
                when += f"  OVERDUE by {monitor.format_age(s['overdue_seconds'])}"
            write(f"  {when}  {s['name']} ({s['kind']} {s['spec']})")
        self._print_paused(snap, write, heading)
        self._print_limits(snap, write, heading)
        if problems:
            for problem in problems:
                self.stderr.write(printable(f"UNHEALTHY: {problem}"))
        else:
            self.stdout.write(self.style.SUCCESS("OK"))
