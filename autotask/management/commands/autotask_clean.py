"""``manage.py autotask_clean``: delete finished tasks whose result ttl has lapsed, now."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from ... import monitor
from ...conf import conf
from ...db import hint_for
from ...models import TaskQueue
from .. import duration, positive_int


class Command(BaseCommand):
    help = (
        "Delete finished tasks (done, error, cancelled) whose result ttl has lapsed, as the workers "
        "do every AUTOTASK_CLEAN_INTERVALL seconds. Waiting and running tasks are never deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=None,
            help="Rows deleted per statement (default: AUTOTASK_CLEAN_BATCH_SIZE).",
        )
        parser.add_argument(
            "--failed-older-than",
            type=duration,
            default=None,
            metavar="DURATION",
            help="Also delete failed (error) tasks that finished longer ago than this, whatever "
            "their AUTOTASK_FAILED_TTL or failed_ttl: seconds, or a number with s, m, h or d "
            "(3600, 12h, 7d).",
        )
        parser.add_argument("--database", default=None, help="Database alias (default: AUTOTASK_DATABASE).")

    def handle(self, *args, **options):
        using = options["database"] or conf.DATABASE
        now = timezone.now()
        older_than = options["failed_older_than"]
        before = None if older_than is None else now - timedelta(seconds=older_than)
        tasks = TaskQueue.objects.using(using)
        try:
            counts = monitor.expired_counts(using=using, now=now)
            failed = 0
            if before is not None:
                # Failures already counted as expired are not counted twice.
                failed = (
                    TaskQueue.objects.using(using).failed_before(before).exclude(expires_at__lte=now).count()
                )
            if options["dry_run"]:
                self._say("Would delete", sum(counts.values()), counts, failed, older_than)
                return
            deleted = monitor.prune_all(using=using, now=now, batch=options["batch_size"])
            if before is not None:
                batch = options["batch_size"] or conf.CLEAN_BATCH_SIZE
                failed = tasks.failed_before(before).delete_in_batches(batch)
        except DatabaseError as exc:
            raise CommandError(f"cannot clean the task table: {exc}{hint_for(exc)}") from exc
        self._say("Deleted", deleted, counts, failed, older_than)

    def _say(self, verb, total, counts, failed, older_than):
        rows = "row" if total == 1 else "rows"
        detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()) if count)
        self.stdout.write(f"{verb} {total} expired task {rows}" + (f" ({detail})." if detail else "."))
        if older_than is not None:
            rows = "task" if failed == 1 else "tasks"
            self.stdout.write(
                f"{verb} {failed} failed {rows} that finished more than {monitor.format_age(older_than)} ago."
            )
