"""The worker's hot statements: their query plans, and what the batched ones write.

The claim must stay an index scan however many rows the table holds (the
benchmark fills it with a million waiting and a million finished rows).  A
test cannot afford that many, so these fill the table with enough rows for
the planner to prefer a sequential scan wherever no index fits (about twenty
thousand, analyzed) and assert the plan, never a time.  The batched and
combined statements (bulk insert, batched finish, finish-and-claim, release)
must write exactly what the one-row portable statements write.
"""

import json
import re
import select
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from autotask.db import new_ops
from autotask.db.base import Driver, NewTask, Outcome
from autotask.db.postgresql import numbered
from autotask.models import Schedule, TaskQueue
from autotask.task import DONE, ERROR, RUNNING, WAITING

pytestmark = pytest.mark.django_db
VENDOR = connection.vendor
LEASE = timedelta(seconds=30)
FINISHED_ROWS = 8_000  # kept for their ttl: claims and next_due must not read them
SCHEDULED_ROWS = 12_000  # waiting, due tomorrow: only the guard keeps claims from reading them all
plans = pytest.mark.skipif(VENDOR not in ("postgresql", "sqlite"), reason="plans of PostgreSQL and SQLite")
postgresql = pytest.mark.skipif(VENDOR != "postgresql", reason="PostgreSQL only")


def new_task(now, name="t", delay=0.0, **fields):
    return NewTask(
        function="tests.app.tasks.echo",
        args=json.dumps(name),
        created_at=now,
        scheduled_at=now + timedelta(seconds=delay),
        **fields,
    )


def insert(ops, tasks):
    """Insert ``tasks`` the way a bulk enqueue does (statements of insert_batch_size rows)."""
    ids = []
    for start in range(0, len(tasks), ops.insert_batch_size):
        ids += ops.insert_tasks(tasks[start : start + ops.insert_batch_size], notify=False)
    return ids


@pytest.fixture
def ops():
    return new_ops(connection)  # not the cached one: a test may switch on prepared statements


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def big_table(ops, now):
    """Many finished rows and many scheduled for tomorrow, in three queues and priorities; analyzed."""
    later = [
        new_task(now, f"later{i}", delay=86_400 + i, queue=f"q{i % 3}", priority=i % 3)
        for i in range(SCHEDULED_ROWS)
    ]
    finished = [
        new_task(now - timedelta(hours=1), f"done{i}", queue=f"q{i % 3}") for i in range(FINISHED_ROWS)
    ]
    insert(ops, later)
    done_ids = insert(ops, finished)
    TaskQueue.objects.filter(pk__in=done_ids).update(
        status=DONE, finished_at=now, expires_at=now + timedelta(days=1), worker_id="gone"
    )
    due = insert(ops, [new_task(now - timedelta(seconds=5), f"due{i}", queue=f"q{i % 3}") for i in range(5)])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ops.table}")
    return due


def explain(sql, params):
    """Return the plan of ``sql`` as text, one line per node."""
    prefix = "EXPLAIN QUERY PLAN " if VENDOR == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, params)
        rows = cursor.fetchall()
    return "\n".join(str(row[-1] if VENDOR == "sqlite" else row[0]) for row in rows)


def executed(func, *args):
    """Call ``func`` and return the (sql, params) of every statement it ran, rolled back."""
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(record):
        func(*args)
        transaction.set_rollback(True)
    return seen


def assert_no_full_scan(plan):
    """No node reads the whole task table (or sorts what an index should hand over in order)."""
    if VENDOR == "postgresql":
        assert "Seq Scan on autotask_taskqueue" not in plan, plan
    else:
        assert not re.search(r"\bSCAN autotask_taskqueue\s*$", plan, re.MULTILINE), plan
        assert "TEMP B-TREE" not in plan, plan


def uses(plan, index):
    """Return True when the plan reads ``index``."""
    if VENDOR == "sqlite":
        return re.search(rf"USING (COVERING )?INDEX {index}\b", plan) is not None
    return f"using {index}" in plan


def outcomes_for(claimed, now):
    """One outcome of each kind, with text that needs quoting, for the claimed tasks in turn."""
    kinds = [
        dict(status=DONE, result='{"quote":"\\"é\\"","x":[1,2]}', expires_at=now + timedelta(seconds=300)),
        dict(
            status=WAITING,
            error_message="it's\tlater",
            traceback="Trace\n  line",
            retry_at=now + timedelta(minutes=5),
        ),
        dict(status=ERROR, error_message="boom \\ é", traceback="tb", expires_at=now + timedelta(seconds=60)),
    ]
    return [
        Outcome(
            id=task.id,
            finished_at=now,
            history=[{"attempt": 1, "worker_id": "w", "error": "l'été"}],
            **kinds[index % len(kinds)],
        )
        for index, task in enumerate(claimed)
    ]


STORED = (
    "status",
    "result",
    "finished_at",
    "expires_at",
    "error_message",
    "traceback",
    "history",
    "scheduled_at",
    "lease_expires_at",
    "worker_id",
    "attempts",
)


def stored(pk):
    return TaskQueue.objects.filter(pk=pk).values(*STORED).get()


# -- plans ----------------------------------------------------------------------


@plans
@pytest.mark.parametrize(
    ("queues", "index"), [(None, "autotask_claim_all_idx"), (["q1"], "autotask_claim_idx")]
)
def test_claim_reads_the_claim_index_and_checks_the_due_index_first(ops, now, big_table, queues, index):
    sql, params = ops._claim_statement("w", queues, 201, now + LEASE, now)
    plan = explain(sql, params)
    if VENDOR == "sqlite":
        # SQLite may serve one queue from the all-queues index too, skipping
        # through it by priority: either claim index reads rows in claim order.
        assert uses(plan, index) or uses(plan, "autotask_claim_all_idx"), plan
    else:
        assert uses(plan, index), plan
    # The guard: one probe of the due index tells whether anything at all is due.
    assert uses(plan, "autotask_due_idx"), plan
    assert_no_full_scan(plan)
    if VENDOR == "postgresql":
        assert "Sort" not in plan, plan  # the index hands rows over in claim order


@pytest.fixture
def stale_statistics(ops, now):
    """Statistics from a quiet moment (every row finished), then a burst of due tasks no ANALYZE saw."""
    done = insert(ops, [new_task(now - timedelta(hours=1), f"old{i}") for i in range(FINISHED_ROWS)])
    TaskQueue.objects.filter(pk__in=done).update(
        status=DONE, finished_at=now, expires_at=now + timedelta(days=1), worker_id="gone"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ops.table}")
    burst = [
        new_task(now - timedelta(seconds=5), f"burst{i}", queue=f"q{i % 3}", priority=i % 3)
        for i in range(SCHEDULED_ROWS)
    ]
    insert(ops, burst)


@plans
@pytest.mark.parametrize(
    ("queues", "index"), [(None, "autotask_claim_all_idx"), (["q1"], "autotask_claim_idx")]
)
def test_claim_of_a_burst_walks_the_claim_index_despite_stale_statistics(
    ops, now, stale_statistics, queues, index
):
    """Statistics that say hardly anything waits must not turn each claim into a sort of the backlog.

    Without its planner settings, a PostgreSQL claim read every due row (through
    the due index or a claim index) and sorted them all, on every claim of the
    burst.
    """
    sql, params = ops._claim_statement("w", queues, 100, now + LEASE, now)
    with transaction.atomic():
        if VENDOR == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(ops.CLAIM_SETTINGS)  # what the claim runs with (see the next test)
        plan = explain(sql, params)
    # Either claim index hands rows over in claim order (the all-queues one
    # with the queue as a filter, when the statistics make the queue look rare).
    assert uses(plan, index) or uses(plan, "autotask_claim_all_idx"), plan
    if VENDOR == "postgresql":
        assert "Sort" not in plan, plan
        assert "Bitmap" not in plan, plan
    assert_no_full_scan(plan)


@postgresql
@pytest.mark.django_db(transaction=True)  # the claims run in autocommit, as a worker's do
@pytest.mark.parametrize("own_session", [False, True])
@pytest.mark.parametrize(("queues", "sorts_off"), [(None, True), (["q1"], True), (["q1", "q2"], False)])
def test_claims_run_with_their_planner_settings(ops, now, queues, sorts_off, own_session):
    """Claims a claim index serves in order forbid sorts: for the session a worker owns, else per claim."""
    if own_session:
        ops.own_session(queues)
    insert(ops, [new_task(now - timedelta(seconds=1), f"t{i}", queue=f"q{i % 2 + 1}") for i in range(8)])
    seen = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(record):
            claimed = ops.claim("w", queues, 2, now + LEASE, now)
            done = [Outcome(id=task.id, status=DONE, finished_at=now) for task in claimed]
            again = ops.finish_and_claim("w", done, queues, 2, now + LEASE, now)
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_sort")
            session = cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_sort")  # the test connection serves the next tests
    assert len(claimed) == 2 and len(again) == 2
    assert all(task.queue in (queues or ["q1", "q2"]) for task in claimed + again)
    claims = [sql for sql in seen if not sql.startswith(("PREPARE", "SET enable_sort"))][-2:]
    assert len(claims) == 2, seen
    per_claim = sorts_off and not own_session
    assert all(sql.startswith(ops.CLAIM_SETTINGS + "; ") == per_claim for sql in claims), claims
    assert session == ("off" if sorts_off and own_session else "on")  # SET LOCAL lingers nowhere
    assert sum(sql == "SET enable_sort = off" for sql in seen) == (sorts_off and own_session)  # once


@postgresql
@pytest.mark.django_db(transaction=True)
def test_a_worker_session_gets_its_settings_again_after_a_reconnect(ops, now):
    ops.own_session(None)
    insert(ops, [new_task(now - timedelta(seconds=1), f"t{i}") for i in range(4)])

    def sorts():
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_sort")
            return cursor.fetchone()[0]

    try:
        for _ in range(2):
            assert len(ops.claim("w", None, 2, now + LEASE, now)) == 2
            assert sorts() == "off"
            ops.reset_connection()  # as after a dropped connection
            assert sorts() == "on"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_sort")


@postgresql
@pytest.mark.parametrize("own_session", [False, True])
def test_a_claim_inside_a_transaction_changes_no_setting(ops, now, own_session):
    """SET LOCAL would last to the end of the caller's transaction, and a SET could be rolled back."""
    if own_session:
        ops.own_session(None)
    insert(ops, [new_task(now - timedelta(seconds=1), f"t{i}") for i in range(2)])
    statements = executed(ops.claim, "w", None, 2, now + LEASE, now)
    assert not any("enable_sort" in sql for sql, _params in statements), statements


@postgresql
@pytest.mark.parametrize(
    ("queues", "index"), [(None, "autotask_claim_all_idx"), (["q1"], "autotask_claim_idx")]
)
def test_the_generic_plan_of_a_prepared_claim_reads_the_indexes(ops, now, big_table, queues, index):
    """A worker's prepared claim soon runs one plan for any parameters: it must read the indexes too."""
    sql, params = ops._claim_statement("w", queues, 201, now + LEASE, now)
    body, arguments = numbered(sql, params)
    prepare = "PREPARE generic_claim AS " + body
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(ops.CLAIM_SETTINGS)
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(prepare)
            cursor.execute(f"EXPLAIN EXECUTE generic_claim({arguments})", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        with connection.cursor() as cursor:  # after the savepoint: an error above stays the one raised
            cursor.execute("DEALLOCATE ALL")
    assert "$1" in plan or "$2" in plan, plan  # generic indeed: parameters, not values
    assert uses(plan, index) or uses(plan, "autotask_claim_all_idx"), plan
    assert uses(plan, "autotask_due_idx"), plan
    assert "Sort" not in plan, plan
    assert_no_full_scan(plan)


@plans
def test_next_due_reads_the_due_index(ops, big_table):
    ((sql, params),) = executed(ops.next_due, None)
    plan = explain(sql, params)
    assert uses(plan, "autotask_due_idx"), plan
    assert_no_full_scan(plan)


@plans
def test_batched_finish_and_finish_and_claim_find_their_rows_by_index(ops, now, big_table):
    claimed = ops.claim("w", None, 5, now + LEASE, now)
    outcomes = outcomes_for(claimed, now)
    for func, args in (
        (ops.finish, ("w", outcomes)),
        (ops.finish_and_claim, ("w", outcomes, None, 201, now + LEASE, now)),
        (ops.release, ("w", claimed)),
        (ops.renew_leases, ("w", now + LEASE, [task.id for task in claimed])),
    ):
        for sql, params in executed(func, *args):
            many = isinstance(params, list | tuple) and params and isinstance(params[0], list | tuple | dict)
            if params is None or many:
                continue  # executemany: each row is the one-row statement checked elsewhere
            if sql.lstrip().upper().startswith(("UPDATE", "WITH")):
                plan = explain(sql, params)
                assert_no_full_scan(plan)
                if VENDOR == "postgresql" and func in (ops.finish, ops.finish_and_claim):
                    # The lease index holds an entry for every task claimed since
                    # the last vacuum: a finish reading it slows down as work accumulates.
                    assert not uses(plan, "autotask_lease_idx"), plan


@postgresql
@pytest.mark.django_db(transaction=True)
def test_enqueue_commits_without_notify_then_wakes_without_waiting_for_the_disk(ops, now):
    """Issue 20: PostgreSQL commits the transactions that NOTIFY one at a time, each through
    its fsync. The rows commit without NOTIFY; the wake-up is a transaction of its own,
    after the commit, with asynchronous commit (it stores nothing)."""
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    listening = Listening(ops)
    try:
        with connection.execute_wrapper(record):
            ops.insert_tasks([new_task(now, queue="mail")])  # autocommit
            with transaction.atomic():
                ops.insert_tasks([new_task(now, queue="sms"), new_task(now, queue="sms")])
                ops.insert_calls(new_task(now, queue="push"), ['"a"', '"b"'])
            with transaction.atomic():
                ops.insert_tasks([new_task(now, queue="never")])
                transaction.set_rollback(True)
        assert listening.queues({"mail", "sms", "push"}) == {"mail", "sms", "push"}
    finally:
        listening.close()
    inserts = [sql for sql, _ in seen if "INSERT" in sql]
    wakes = [(sql, atomic) for sql, atomic in seen if "pg_notify" in sql]
    assert len(inserts) == 4 and not any("pg_notify" in sql for sql in inserts)
    assert len(wakes) == 3  # the rolled-back enqueue wakes nobody
    for sql, atomic in wakes:
        assert not atomic and "set_config('synchronous_commit', 'off', true)" in sql


@plans
def test_the_runs_of_a_schedule_are_found_by_index(ops, now, big_table):
    """Deleting a schedule sets its runs' schedule to NULL: that lookup must not read the table."""
    schedule = Schedule.objects.create(name="tests.nightly", kind="cron", next_run_at=now)
    insert(ops, [new_task(now, f"run{i}", schedule_id=schedule.pk) for i in range(3)])
    query = TaskQueue.objects.filter(schedule_id=schedule.pk).values("id").query
    sql, params = query.sql_with_params()
    plan = explain(sql, params)
    assert_no_full_scan(plan)
    assert uses(plan, "autotask_schedule_runs_idx"), plan


@postgresql
def test_prune_reads_the_expiry_index(ops, now, big_table):
    """A prune pass locks and deletes its batch through the expiry index, whatever the table holds."""
    ((sql, params),) = executed(ops.prune, now + timedelta(days=2), 1000)
    plan = explain(sql, params)
    assert_no_full_scan(plan)
    assert uses(plan, "autotask_expiry_idx"), plan
    assert "LockRows" in plan, plan


# -- what the claim returns ---------------------------------------------------------


def test_claim_with_nothing_due_among_scheduled_rows_returns_nothing(ops, now):
    insert(ops, [new_task(now, f"later{i}", delay=3600) for i in range(50)])
    assert ops.claim("w", None, 201, now + LEASE, now) == []


def test_claim_guard_never_hides_due_tasks(ops, now):
    insert(ops, [new_task(now, f"later{i}", delay=3600, priority=5) for i in range(50)])
    (due,) = insert(ops, [new_task(now, "due", delay=-1, queue="q2")])
    assert ops.claim("w", ["q1"], 201, now + LEASE, now) == []  # due, but in another queue
    assert [task.id for task in ops.claim("w", None, 201, now + LEASE, now)] == [due]


# -- batched statements write what the one-row statements write ----------------------


@postgresql
def test_batched_finish_writes_what_the_portable_finish_writes(ops, now):
    batched = insert(ops, [new_task(now, f"b{i}", max_attempts=3) for i in range(6)])
    single = insert(ops, [new_task(now, f"s{i}", max_attempts=3) for i in range(6)])
    claimed = ops.claim("w", None, 12, now + LEASE, now)
    by_id = {task.id: task for task in claimed}
    ops.finish("w", outcomes_for([by_id[pk] for pk in batched], now))
    for outcome in outcomes_for([by_id[pk] for pk in single], now):
        Driver.finish(ops, "w", [outcome])  # the portable one-row UPDATE
    assert [stored(pk) for pk in batched] == [stored(pk) for pk in single]
    assert {stored(pk)["status"] for pk in batched} == {DONE, WAITING, ERROR}


def test_finish_and_claim_writes_the_outcomes_then_claims_in_order(ops, now):
    first = insert(ops, [new_task(now, f"f{i}") for i in range(3)])
    claimed = ops.claim("w", None, 3, now + LEASE, now)
    stolen = claimed[0].id
    TaskQueue.objects.filter(pk=stolen).update(worker_id="other")  # recovered and re-claimed elsewhere
    later = insert(ops, [new_task(now, f"n{i}", priority=i) for i in range(4)])
    taken = ops.finish_and_claim("w", outcomes_for(claimed, now), None, 3, now + LEASE, now)
    assert [task.id for task in taken] == [later[3], later[2], later[1]]  # priority first
    assert stored(stolen)["status"] == RUNNING  # another worker's row is left alone
    assert [stored(pk)["status"] for pk in first[1:]] == [WAITING, ERROR]
    assert ops.finish_and_claim("w", [], None, 5, now + LEASE, now)[0].id == later[0]
    assert ops.finish_and_claim("w", outcomes_for(taken, now), None, 0, now + LEASE, now) == []
    assert [stored(pk)["status"] for pk in later[1:]] == [ERROR, WAITING, DONE]


def test_bulk_insert_with_every_column_varying_round_trips(ops, now):
    schedule = Schedule.objects.create(
        name="tests.app.tasks.echo", kind="periodic", spec="60", next_run_at=now
    )
    awkward = ['quote " and \\ backslash', "l'été ☃", "line\nbreak\ttab", "{}", "[]", "null"]
    tasks = [
        NewTask(
            function=f"tests.app.tasks.f{i}",
            args=json.dumps(awkward[i % len(awkward)]),
            created_at=now - timedelta(seconds=i),
            scheduled_at=now + timedelta(seconds=i * 1.5),
            kind="periodic" if i % 2 else "delayed",
            queue=f"q{i % 4}",
            priority=i % 7 - 3,
            ttl=10.5 + i,
            max_attempts=1 + i % 3,
            options={"timeout": i or None, "nested": {"é": [i, "x'y"]}} if i % 3 else {},
            schedule_id=schedule.pk if i % 2 else None,
        )
        for i in range(40)
    ]
    ids = insert(ops, tasks)
    assert ids == sorted(ids) and len(set(ids)) == len(tasks)
    rows = {row.pk: row for row in TaskQueue.objects.filter(pk__in=ids)}
    for pk, task in zip(ids, tasks, strict=True):
        row = rows[pk]
        assert (row.function, row.args, row.kind, row.queue, row.priority) == (
            task.function,
            task.args,
            task.kind,
            task.queue,
            task.priority,
        )
        assert (row.created_at, row.scheduled_at, row.ttl, row.max_attempts) == (
            task.created_at,
            task.scheduled_at,
            task.ttl,
            task.max_attempts,
        )
        assert (row.options, row.schedule_id, row.status, row.attempts, row.history) == (
            task.options,
            task.schedule_id,
            WAITING,
            0,
            [],
        )


def test_release_gives_claimed_tasks_back_as_never_claimed(ops, now):
    ids = insert(ops, [new_task(now, f"r{i}", max_attempts=2) for i in range(3)])
    before = [stored(pk) for pk in ids]
    claimed = ops.claim("w", None, 3, now + LEASE, now)
    assert ops.release("other", claimed) == 0  # only the worker holding them can give them back
    assert ops.release("w", claimed[1:]) == 2
    assert [stored(pk) for pk in ids[1:]] == before[1:]  # attempts, worker, lease: as before the claim
    assert stored(ids[0])["status"] == RUNNING
    assert [task.id for task in ops.claim("x", None, 5, now + LEASE, now)] == ids[1:]


# -- notifications ----------------------------------------------------------------------


class Listening:
    """A second connection LISTENing on the task channel."""

    def __init__(self, ops):
        self.listener = ops.listener()

    def queues(self, expected=frozenset(), timeout=0.5, settle=0.3):
        """The queues woken: ``expected`` waited for (10 s at most), else ``timeout``.

        Wake-ups sent by separate transactions arrive one by one; once the
        expected ones are in, ``settle`` more seconds catch any that should not be.
        """
        got = set()
        deadline = time.monotonic() + (10 if expected else timeout)
        while (remaining := deadline - time.monotonic()) > 0:
            select.select([self.listener.fileno()], [], [], remaining)
            got |= self.listener.drain()
            if expected and got >= expected:
                deadline = min(deadline, time.monotonic() + settle)
                expected = frozenset()  # settling: read what else arrives
        return got

    def close(self):
        self.listener.close()


@postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
@pytest.mark.parametrize("statements", ["one row each", "one for all", "calls of one function"])
def test_enqueue_notifies_on_commit_only(ops, now, outcome, statements):
    """One row, several, and many calls go by different statements: each carries its NOTIFY."""
    listening = Listening(ops)
    tasks = [new_task(now, queue="mail"), new_task(now, queue="sms"), new_task(now, delay=60)]
    try:
        with transaction.atomic():
            if statements == "calls of one function":
                for template in tasks:
                    ops.insert_calls(template, ['"a"', '"b"'])
            for batch in [[task] for task in tasks] if statements == "one row each" else [tasks]:
                if statements != "calls of one function":
                    ops.insert_tasks(batch)
            assert listening.queues(timeout=0.2) == set()  # nothing before the commit
            if outcome == "rollback":
                transaction.set_rollback(True)
        expected = {"mail", "sms"} if outcome == "commit" else set()
        assert listening.queues(expected) == expected  # the delayed task's queue is not woken
    finally:
        listening.close()


@postgresql
@pytest.mark.django_db(transaction=True)
def test_release_wakes_the_other_workers(ops, now):
    insert(ops, [new_task(now, queue="mail")])
    claimed = ops.claim("w", None, 1, now + LEASE, now)
    listening = Listening(ops)
    try:
        ops.release("w", claimed)
        assert listening.queues({"mail"}) == {"mail"}
    finally:
        listening.close()


@postgresql
@pytest.mark.django_db(transaction=True)
def test_prepared_claims_survive_a_new_connection(ops, now):
    """A worker prepares its claim once per connection; a reconnect prepares it again."""
    ops.own_session(None)
    ids = insert(ops, [new_task(now, f"p{i}") for i in range(6)])
    taken = []
    for _ in range(2):
        statements = executed(ops.claim, "w", None, 1, now + LEASE, now)
        assert statements[-1][0].startswith("EXECUTE autotask_"), statements
        taken += [task.id for task in ops.claim("w", None, 1, now + LEASE, now)]
        ops.reset_connection()  # as after a dropped connection: the next query opens a new one
    outcomes = outcomes_for(ops.claim("w", None, 2, now + LEASE, now), now)
    taken += [task.id for task in ops.finish_and_claim("w", outcomes, None, 2, now + LEASE, now)]
    assert taken == ids[:2] + ids[4:]
    assert [stored(pk)["status"] for pk in ids[2:4]] == [DONE, WAITING]


@postgresql
@pytest.mark.django_db(transaction=True)
def test_a_failed_wake_up_after_the_commit_keeps_the_task_and_says_so(ops, now, caplog, monkeypatch):
    from django.db import OperationalError

    real = ops._execute_direct

    def failing_wake(sql, params):
        if "pg_notify" in sql:
            raise OperationalError("connection lost")
        return real(sql, params)

    monkeypatch.setattr(ops, "_execute_direct", failing_wake)
    with caplog.at_level("WARNING", logger="autotask"):
        (pk,) = ops.insert_tasks([new_task(now, queue="mail")])
    assert stored(pk)["status"] == WAITING
    assert "waking the workers failed" in caplog.text
