"""``manage.py autotask_clean``: delete finished tasks whose result ttl has lapsed, now."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from ... import monitor
from ...conf import conf
from ...db import hint_for
from .. import positive_int


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
        parser.add_argument("--database", default=None, help="Database alias (default: AUTOTASK_DATABASE).")

    def handle(self, *args, **options):
        using = options["database"] or conf.DATABASE
        now = timezone.now()
        try:
            counts = monitor.expired_counts(using=using, now=now)
            if options["dry_run"]:
                self._say("Would delete", sum(counts.values()), counts)
                return
            deleted = monitor.prune_all(using=using, now=now, batch=options["batch_size"])
        except DatabaseError as exc:
            raise CommandError(f"cannot clean the task table: {exc}{hint_for(exc)}") from exc
        self._say("Deleted", deleted, counts)

    def _say(self, verb, total, counts):
        rows = "row" if total == 1 else "rows"
        detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()) if count)
        self.stdout.write(f"{verb} {total} expired task {rows}" + (f" ({detail})." if detail else "."))
