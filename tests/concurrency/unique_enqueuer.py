"""One process of the concurrent unique-enqueue test: enqueue every key once, racing the others.

Run as ``python -m tests.concurrency.unique_enqueuer TASK KEYS START_FILE``
with the test's environment (settings, database name).  It prints "ready",
waits for START_FILE, enqueues keys 0..KEYS-1 in an order of its own (one
call at a time, the last fifth with enqueue_many), then prints one JSON line:
{key: [id, duplicate]}.
"""

import json
import os
import random
import sys
import time

import django

START_DEADLINE = 60.0  # seconds to wait for the start signal


def main(task_name, keys, start_file):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from tests.app import unique_tasks

    task = getattr(unique_tasks, task_name)
    order = list(range(keys))
    random.shuffle(order)
    print("ready", flush=True)
    deadline = time.monotonic() + START_DEADLINE
    while not os.path.exists(start_file):
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.005)
    split = len(order) * 4 // 5
    results = {}
    for key in order[:split]:
        handle = task(f"k{key}")
        results[f"k{key}"] = [handle.pk, handle.duplicate]
    rest = order[split:]
    for key, handle in zip(rest, task.enqueue_many((f"k{key}",) for key in rest), strict=True):
        results[f"k{key}"] = [handle.pk, handle.duplicate]
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
