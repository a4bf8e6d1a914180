"""Worker rows: who is alive, for the admin and the status command."""

from datetime import timedelta

from ..conf import conf
from ..models import Worker


def heartbeat(worker, now):
    """Record that ``worker`` is alive (for the admin and the status command)."""
    updated = Worker.objects.using(worker.using).filter(worker_id=worker.worker_id).update(last_seen=now)
    if not updated:
        hostname, pid = worker.worker_id.split(":")[:2]
        Worker.objects.using(worker.using).create(
            worker_id=worker.worker_id,
            hostname=hostname,
            pid=int(pid),
            queues=",".join(worker.queues or []),
            concurrency=worker.concurrency,
            started_at=now,
            last_seen=now,
        )
    # Rows of workers silent for ten leases are gone for good.
    stale = now - timedelta(seconds=conf.LEASE_SECONDS * 10)
    Worker.objects.using(worker.using).filter(last_seen__lt=stale).delete()


def forget_worker(worker):
    Worker.objects.using(worker.using).filter(worker_id=worker.worker_id).delete()
