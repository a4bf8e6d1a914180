"""The demo's background work: what a small shop hands to autotask."""

import hashlib
import time

from autotask.tasks import delayed_task


@delayed_task(retries=2, retry_delay=0.2)
def send_receipt(order_id, email):
    """Pretend to talk to a mail server: slow, and it fails now and then."""
    time.sleep(0.05)
    if order_id % 17 == 0:
        raise ConnectionError(f"mail server refused order {order_id}")
    return f"receipt for order {order_id} sent to {email}"


@delayed_task(ttl=3600)
def make_thumbnail(image_name, size=(128, 128)):
    """Pretend to resize an image: CPU work that should not block a request."""
    digest = hashlib.sha256(image_name.encode())
    for _ in range(2000):
        digest = hashlib.sha256(digest.digest())
    return {"image": image_name, "size": size, "checksum": digest.hexdigest()[:12]}
