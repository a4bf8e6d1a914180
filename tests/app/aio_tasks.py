"""async def tasks for the tests of the worker's event loop (tests/aio)."""

import asyncio
import os
import threading
import time
from pathlib import Path

from asgiref.sync import sync_to_async

import autotask
from autotask.tasks import delayed_task

from .models import Record

POLL = 0.01  # seconds between looks at a file a task waits on


async def _wait_for(predicate, deadline_seconds, what):
    """Await ``predicate()`` by polling; raise when ``deadline_seconds`` pass first."""
    deadline = time.monotonic() + deadline_seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(POLL)


def _arrive(directory):
    """Append this task's id to ``directory``/arrived (one short write: atomic with O_APPEND)."""
    current = autotask.current_task()
    fd = os.open(Path(directory) / "arrived", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{current.id}\n".encode())
    finally:
        os.close(fd)
    return current


def _lines(path):
    try:
        return Path(path).read_text().count("\n")
    except FileNotFoundError:
        return 0


@delayed_task(retries=0)
async def barrier(directory, needed, give_up=60):
    """Arrive, then wait until ``needed`` tasks have arrived: passes only with that many in flight."""
    current = _arrive(directory)
    await _wait_for(lambda: _lines(Path(directory) / "arrived") >= needed, give_up, f"{needed} tasks")
    assert autotask.current_task() is current  # still this coroutine's own, after the others ran
    return current.id


@delayed_task(retries=1, retry_delay=0)
async def held_until_released(directory, give_up=60):
    """Arrive, then wait for ``directory``/release, on its first attempt only; return the attempt."""
    current = _arrive(directory)
    if current.attempt == 1:
        await _wait_for(lambda: (Path(directory) / "release").exists(), give_up, "the release file")
    return current.attempt


@delayed_task(retries=0)
async def stopped_by_another_thread(directory, after=0.2):
    """Ask for its own stop from another thread, then await far longer than a test runs."""
    current = _arrive(directory)
    threading.Timer(after, current.request_stop).start()
    await asyncio.sleep(3600)
    return "not stopped"


@delayed_task(retries=0, timeout=0.3)
async def sleeps_past_timeout():
    await asyncio.sleep(3600)
    return "not timed out"


@delayed_task(retries=0)
async def blocks_the_loop(seconds):
    time.sleep(seconds)  # the very thing not to do in a coroutine
    return seconds


@delayed_task(retries=0)
async def uses_the_orm(key):
    """Django's async ORM and sync_to_async inside an async task."""
    await Record.objects.acreate(key=key, pid=os.getpid())
    count = await sync_to_async(Record.objects.filter(key__startswith=key).count)()
    return count


@delayed_task(retries=0)
def sync_sleep(seconds):
    time.sleep(seconds)
    return "sync"


@delayed_task(retries=0)
async def async_sleep(seconds):
    await asyncio.sleep(seconds)
    return autotask.current_task().id


@delayed_task(retries=0)
async def finds_the_orm_connection_open():
    """Whether the connection of the thread async ORM calls run on is open before this task uses it."""
    from django.db import connections

    return await sync_to_async(lambda: connections["default"].connection is not None)()


@delayed_task(retries=0)
def sync_held_until_released(directory, give_up=60):
    """A sync task that holds its thread until ``directory``/release exists."""
    deadline = time.monotonic() + give_up
    while not (Path(directory) / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting for the release file")
        time.sleep(POLL)
    return "released"


@delayed_task(retries=0)
def sync_worker_id():
    return autotask.current_task().worker_id


@delayed_task(retries=0)
async def async_worker_id():
    return autotask.current_task().worker_id


@delayed_task(retries=0)
async def exits(code):
    import sys

    await asyncio.sleep(0)
    sys.exit(code)
