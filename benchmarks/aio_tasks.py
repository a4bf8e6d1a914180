"""The async benchmark's tasks, in a module of their own: the other benchmarks' workers never meet one."""

import asyncio

from autotask.tasks import delayed_task


@delayed_task
async def async_wait(seconds):
    """Await ``seconds``, as a task waiting on the network does."""
    await asyncio.sleep(seconds)


@delayed_task
def sync_noop():
    """Do nothing, on a thread: the sync half of the mixed run."""
