"""Store calls as task rows, in the caller's transaction, and wake workers on commit."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import serialization, tracing
from ..conf import conf
from ..db import get_ops
from ..db.base import NewTask
from ..exceptions import SerializationError
from ..signals import task_enqueued
from .handle import DelayedTask

# Callables run after a commit that enqueued runnable tasks (alias -> None);
# the supervisor registers one to wake the worker beside this process.
local_wakeups: list[Callable[..., Any]] = []


def build_row(name, args, kwargs, options, now, kind="delayed", schedule_id=None):
    """Return the :class:`NewTask` for one call; raise before anything is stored."""
    return NewTask(
        function=name,
        args=serialization.encode_call(args, kwargs),
        created_at=now,
        scheduled_at=now + timedelta(seconds=options.delay) if options.delay else now,
        kind=kind,
        queue=options.queue or conf.DEFAULT_QUEUE,
        priority=options.priority,
        ttl=options.ttl,
        max_attempts=options.retries + 1,
        options=options.stored(),
        schedule_id=schedule_id,
    )


def insert(rows, using=None, sender=None, traced=True):
    """Insert prepared rows in one statement; return their ids.

    With AUTOTASK_TRACING (and ``traced``: a scheduled run is not), the
    insert runs in a send span whose context the rows carry.
    """
    alias = using or conf.DATABASE
    ops = get_ops(alias)
    if traced and conf.TRACING:
        ids = tracing.send(rows, lambda: ops.insert_tasks(rows))
    else:
        ids = ops.insert_tasks(rows)
    announce(alias, ids, rows, sender)
    return ids


def announce(alias, ids, rows, sender):
    """After an insert: wake the local worker on commit if a row is due; send task_enqueued per row.

    ``rows`` holds one row per id, or is one row standing for all (same function and times).
    """
    rows = [rows] * len(ids) if isinstance(rows, NewTask) else rows
    if any(row.due for row in rows):
        wake_local_on_commit(alias)
    if task_enqueued.receivers:
        names = [row.function for row in rows]
        for pk, name in zip(ids, names, strict=True):
            task_enqueued.send(sender=sender, task=DelayedTask(pk, using=alias), name=name)


def wake_local_on_commit(alias):
    """Wake the worker beside this process (if any) when the transaction on ``alias`` commits."""
    if local_wakeups:
        transaction.on_commit(lambda: _wake_local(alias), using=alias)


def _wake_local(alias):
    for wake in list(local_wakeups):
        wake(alias)


def enqueue(name, args, kwargs, options, using=None, sender=None):
    """Store one call; return its id."""
    row = build_row(name, args, kwargs, options, timezone.now())
    return insert([row], using=using, sender=sender)[0]


def enqueue_many(name, calls, options, using=None, sender=None):
    """Store many calls in one statement; return their ids in order.

    ``calls`` holds (args, kwargs) pairs.  Every call is encoded before the
    first is stored, so one bad argument stores nothing.
    """
    alias = using or conf.DATABASE
    # Everything but the arguments is the same for every call: build it once.
    template = build_row(name, (), {}, options, timezone.now())
    serializer = conf.SERIALIZER
    encode = serialization.encode_call
    encoded = []
    for index, (args, kwargs) in enumerate(calls):
        try:
            encoded.append(encode(args, kwargs, serializer=serializer))
        except SerializationError as exc:
            raise SerializationError(f"calls[{index}] of enqueue_many: {exc}") from exc
    ops = get_ops(alias)
    with transaction.atomic(using=alias):
        if conf.TRACING:  # one send span for the batch
            ids = tracing.send([template], lambda: ops.insert_calls(template, encoded), count=len(encoded))
        else:
            ids = ops.insert_calls(template, encoded)
        announce(alias, ids, template, sender)
    return ids
