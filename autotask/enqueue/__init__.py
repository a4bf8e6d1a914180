"""Store calls as task rows, in the caller's transaction, and wake workers on commit."""

from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import serialization, tracing
from ..conf import conf
from ..db import flow, get_ops
from ..db.base import NewTask
from ..definitions import limits, unique
from ..exceptions import SerializationError
from ..signals import task_enqueued
from .handle import DelayedTask

# Callables run after a commit that enqueued runnable tasks (alias -> None);
# the supervisor registers one to wake the worker beside this process.
local_wakeups: list[Callable[..., Any]] = []


def build_row(name, args, kwargs, options, now, kind="delayed", schedule_id=None, func=None):
    """Return the :class:`NewTask` for one call; raise before anything is stored.

    ``func`` (the task's function) names the arguments of a ``unique_key`` template.
    """
    row = NewTask(
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
    if options.unique is not None or options.unique_key is not None:
        set_unique_key(row, name, options, func, args, kwargs)
    if options.concurrency_limit is not None or options.rate_limit is not None:
        set_limits(row, name, options, func, args, kwargs)
    return row


def set_limits(row, name, options, func, args, kwargs):
    """Give ``row`` the concurrency key and rate key of its call (see definitions/limits.py).

    The worker reads both from the row's options; the concurrency key and
    limit also have columns of their own, which the admissions read.
    """
    extra = {}
    key = limits.concurrency_key(name, options, func, args, kwargs)
    if key is not None:
        row.concurrency_key, row.concurrency_limit = key, options.concurrency_limit
        extra["concurrency_key"] = key
    rate_key = limits.rate_key(name, options, func, args, kwargs)
    if rate_key is not None:
        extra["rate_key"] = rate_key
    if extra:
        row.options = {**row.options, **extra}


def per_call_keys(options):
    """True when each call of a task with ``options`` may get keys of its own (built row by row)."""
    return (
        options.unique is not None
        or options.unique_key is not None
        or options.concurrency_limit is not None
        or options.rate_key is not None
    )


def set_unique_key(row, name, options, func, args, kwargs):
    """Give ``row`` the unique key and scope of its call (see definitions/unique.py)."""
    row.unique_key, row.unique_scope = unique.row_key(
        name, options, func, args, kwargs, row.args, row.created_at
    )
    if row.unique_scope == unique.WINDOW:
        # The finished row holds the window's key until it is deleted: keep it
        # at least until its period ends, or pruning would let a second one in.
        until = unique.window_end(options.unique, row.created_at)
        row.ttl = max(row.ttl, until)
        failed_ttl = row.options.get("failed_ttl", conf.FAILED_TTL)
        if failed_ttl is not None and failed_ttl < until:
            row.options = {**row.options, "failed_ttl": until}


def insert(rows, using=None, sender=None, traced=True):
    """Insert prepared rows in one statement; return their ids."""
    return [pk for pk, _ in store(rows, using, sender, traced)]


def store(rows, using=None, sender=None, traced=True):
    """Insert prepared rows; return (id, duplicate) per row.

    A row with a unique key whose key is taken is not stored: its pair holds
    the id of the row in scope and True.  Rows without keys go in one statement.
    With AUTOTASK_TRACING (and ``traced``: a scheduled run is not), the
    insert runs in a send span whose context the rows carry.
    """
    if traced and conf.TRACING:
        pairs = []

        def stored_ids():
            pairs.extend(_store(rows, using, sender))
            return [pk for pk, _ in pairs]

        tracing.send(rows, stored_ids)
        return pairs
    return _store(rows, using, sender)


def _store(rows, using, sender):
    alias = using or conf.DATABASE
    ops = get_ops(alias)
    if any(row.concurrency_key is not None for row in rows):
        return _store_held(rows, alias, ops, sender)
    if not any(row.unique_key is not None for row in rows):
        ids = ops.insert_tasks(rows)
        announce(alias, ids, rows, sender)
        return [(pk, False) for pk in ids]
    # Several rows: all or none (a single one needs no transaction of its own),
    # inserted in key order: concurrent batches then take the index's locks in
    # one order, and cannot deadlock on each other.
    order = sorted(range(len(rows)), key=lambda i: rows[i].unique_key or "")
    stored = [(0, False)] * len(rows)
    keyed = [i for i in order if rows[i].unique_key is not None]
    with transaction.atomic(using=alias) if len(rows) > 1 else nullcontext():
        for i in order:
            if rows[i].unique_key is None:
                stored[i] = (ops.insert_tasks([rows[i]], notify=False)[0], False)
        for i, pair in zip(keyed, ops.insert_unique_many([rows[i] for i in keyed]), strict=True):
            stored[i] = pair
        new = [(pk, row) for (pk, duplicate), row in zip(stored, rows, strict=True) if not duplicate]
        if new:
            # One wake-up for the batch, not one per row.
            with ops.cursor() as cursor:
                ops.notify(cursor, {row.queue for _, row in new if row.due})
            announce(alias, [pk for pk, _ in new], [row for _, row in new], sender)
    return stored


def _store_held(rows, alias, ops, sender):
    """Store rows with concurrency keys HELD (rows without go as usual), admit once committed.

    A task cannot be unique and limited at once (definitions/limits.py), so
    no row here has a unique key.
    """
    from ..models import TaskQueue  # not at the top: see autotask.db.base.Driver.__init__

    held = [i for i, row in enumerate(rows) if row.concurrency_key is not None]
    plain = [i for i, row in enumerate(rows) if row.concurrency_key is None]
    ids = [0] * len(rows)
    with transaction.atomic(using=alias):
        if plain:
            for i, pk in zip(plain, ops.insert_tasks([rows[i] for i in plain]), strict=True):
                ids[i] = pk
        objects = [TaskQueue(**_held_fields(rows[i], ops)) for i in held]
        created = TaskQueue.objects.using(alias).bulk_create(objects, batch_size=1000)
        for i, obj in zip(held, created, strict=True):
            ids[i] = obj.pk
        announce(alias, [ids[i] for i in held], [rows[i] for i in held], sender, wake=False)
        if plain:
            announce(alias, [ids[i] for i in plain], [rows[i] for i in plain], sender)
        admit_on_commit(alias, {rows[i].concurrency_key for i in held})
    return [(pk, False) for pk in ids]


def _held_fields(row, ops):
    """The model fields of a HELD row for ``row`` (a NewTask with a concurrency key)."""
    from ..task import HELD

    fields = row.values(ops)
    fields.update(
        created_at=row.created_at,
        scheduled_at=row.scheduled_at,
        options=row.options,
        history=[],
        status=HELD,
        concurrency_key=row.concurrency_key,
        concurrency_limit=row.concurrency_limit,
    )
    return fields


def admit_on_commit(alias, keys):
    """Admit HELD tasks of ``keys`` once the transaction on ``alias`` commits (see autotask.db.flow)."""
    transaction.on_commit(lambda: flow.admit_safely(get_ops(alias), timezone.now(), keys), using=alias)


def announce(alias, ids, rows, sender, wake=True):
    """After an insert: wake the local worker on commit if a row is due; send task_enqueued per row.

    ``rows`` holds one row per id, or is one row standing for all (same function and times).
    """
    rows = [rows] * len(ids) if isinstance(rows, NewTask) else rows
    if wake and any(row.due for row in rows):
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


def enqueue(name, args, kwargs, options, using=None, sender=None, func=None):
    """Store one call; return its id (for a unique task whose key is taken, the holder's)."""
    return enqueue_call(name, args, kwargs, options, using, sender, func)[0]


def enqueue_call(name, args, kwargs, options, using=None, sender=None, func=None):
    """Store one call; return (its id, False), or (the id of the task holding its unique key, True)."""
    row = build_row(name, args, kwargs, options, timezone.now(), func=func)
    return store([row], using=using, sender=sender)[0]


def enqueue_many(name, calls, options, using=None, sender=None, func=None):
    """Store many calls in one statement; return their ids in order.

    ``calls`` holds (args, kwargs) pairs.  Every call is encoded before the
    first is stored, so one bad argument stores nothing.
    """
    return enqueue_calls(name, calls, options, using, sender, func)[0]


def enqueue_calls(name, calls, options, using=None, sender=None, func=None):
    """:func:`enqueue_many`, also saying which calls were duplicates: (ids, flags).

    ``flags`` is None when the task is not unique, else one per call: True
    where the call's unique key was taken (its id is then the holder's).
    """
    alias = using or conf.DATABASE
    if per_call_keys(options):
        return _enqueue_many_unique(name, calls, options, alias, sender, func)
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
    return ids, None


def _enqueue_many_unique(name, calls, options, alias, sender, func):
    """enqueue_many of a task whose calls get keys of their own (unique, limited), in one transaction."""
    now = timezone.now()
    rows = []
    for index, (args, kwargs) in enumerate(calls):
        try:
            rows.append(build_row(name, args, kwargs, options, now, func=func))
        except SerializationError as exc:
            raise SerializationError(f"calls[{index}] of enqueue_many: {exc}") from exc
    stored = store(rows, using=alias, sender=sender)
    ids = [pk for pk, _ in stored]
    if options.unique is None and options.unique_key is None:
        return ids, None
    return ids, [duplicate for _, duplicate in stored]
