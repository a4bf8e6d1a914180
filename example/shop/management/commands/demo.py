"""``manage.py demo``: enqueue a batch of tasks and watch the worker finish them."""

import sys
import time

from django.core.management.base import BaseCommand
from django.db.models import Count

from autotask.models import TaskQueue
from autotask.task import DONE, ERROR, STATUS_NAMES
from shop.tasks import make_thumbnail, send_receipt

ORDERS = 40
IMAGES = 20
TIMEOUT = 120  # seconds before the demo gives up waiting


class Command(BaseCommand):
    help = "Enqueue a batch of demo tasks, show progress while a worker runs them, print a summary."

    def handle(self, *args, **options):
        TaskQueue.objects.all().delete()
        self.stdout.write(f"Enqueueing {ORDERS} receipts and {IMAGES} thumbnails ...")
        started = time.monotonic()
        receipts = [send_receipt(order, f"customer{order}@example.com") for order in range(1, ORDERS + 1)]
        thumbnails = make_thumbnail.enqueue_many((f"photo-{i}.jpg",) for i in range(IMAGES))
        handles = receipts + thumbnails
        self.stdout.write(
            f"Enqueued {len(handles)} tasks in {time.monotonic() - started:.3f}s; "
            "the worker beside this process runs them."
        )
        self._watch(len(handles), started)
        self._summary(receipts, thumbnails, started)

    def _watch(self, total, started):
        deadline = time.monotonic() + TIMEOUT
        while True:
            counts = dict(TaskQueue.objects.values_list("status").annotate(n=Count("id")))
            finished = counts.get(DONE, 0) + counts.get(ERROR, 0)
            bar = "#" * (30 * finished // total)
            self.stdout.write(
                f"\r[{bar:<30}] {finished}/{total} finished "
                + " ".join(f"{STATUS_NAMES[s]}={n}" for s, n in sorted(counts.items())),
                ending="",
            )
            self.stdout.flush()
            if finished == total:
                self.stdout.write("")
                return
            if time.monotonic() > deadline:
                self.stdout.write("")
                self.stderr.write("No worker finished the tasks in time. Is AUTOTASK_IS_ACTIVE set?")
                sys.exit(1)
            time.sleep(0.2)

    def _summary(self, receipts, thumbnails, started):
        elapsed = time.monotonic() - started
        failed = [r for r in receipts if r.status == ERROR]
        self.stdout.write(f"All {len(receipts) + len(thumbnails)} tasks finished in {elapsed:.1f}s.")
        self.stdout.write(
            f"Receipts sent: {len(receipts) - len(failed)}; "
            f"failed after retries: {len(failed)} (orders divisible by 17)."
        )
        for handle in failed:
            self.stdout.write(
                f"  order task #{handle.pk}: {handle.error_message} ({handle.attempts} attempts)"
            )
        self.stdout.write(f"A receipt: {receipts[0].result!r}")
        self.stdout.write(f"A thumbnail: {thumbnails[0].result!r}")
        self.stdout.write("The worker's log, tracebacks included, is in example/autotask.log.")
        self.stdout.write(self.style.SUCCESS("Demo finished."))
