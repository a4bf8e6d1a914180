"""The db/base.py contract, held against the database this run uses.

One module for every vendor: tox runs it on SQLite, PostgreSQL and MariaDB
(AUTOTASK_TEST_DB).  Vendor-specific tests say so with a skip condition;
everything else must hold everywhere.
"""

import json
import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from autotask.db import get_ops
from autotask.db.base import Driver, NewTask, Outcome
from autotask.models import TaskQueue
from autotask.task import CANCELLED, DONE, ERROR, FINISHED, RUNNING, WAITING

pytestmark = pytest.mark.django_db
LEASE = timedelta(seconds=30)
THREAD_DEADLINE = 20.0  # seconds a helper thread may take before the test calls it stuck
VENDOR = connection.vendor
only_on = {
    name: pytest.mark.skipif(name != VENDOR, reason=f"{name} only")
    for name in ("postgresql", "mysql", "sqlite")
}
CLAIM_INDEXES = pytest.mark.parametrize(
    ("queues", "index"), [(None, "autotask_claim_all_idx"), (["q1"], "autotask_claim_idx")]
)


def claim_variants():
    """The claim paths this database has: the default, and on MySQL the fallbacks for older servers."""
    if VENDOR != "mysql":
        return [None]
    from autotask.db.mysql import MysqlDriver

    return [
        None,
        # MariaDB 10.5: no SKIP LOCKED, so claims queue up behind each other but stay exclusive.
        type("MysqlWithoutSkipLocked", (MysqlDriver,), {"supports_skip_locked": False}),
        # MariaDB 10.6/10.7 ignore DESC in indexes: claims go one priority at a time.
        type("MysqlWithoutDescendingIndexes", (MysqlDriver,), {"supports_descending_indexes": False}),
    ]


every_claim_path = pytest.mark.parametrize(
    "ops", claim_variants(), indirect=True, ids=lambda cls: cls.__name__ if cls else "default"
)


@pytest.fixture
def ops(request):
    variant = getattr(request, "param", None)
    return variant(connection) if variant else get_ops()


@pytest.fixture
def now():
    return timezone.now()


def task(now, name="t", delay=0.0, queue="default", priority=0, **fields):
    """Return a NewTask whose args carry ``name`` (so rows can be told apart)."""
    return NewTask(
        function="tests.app.tasks.echo",
        args=json.dumps(name),
        created_at=now,
        scheduled_at=now + timedelta(seconds=delay),
        queue=queue,
        priority=priority,
        **fields,
    )


def names(claimed):
    return [json.loads(t.args) for t in claimed]


def row(pk):
    return TaskQueue.objects.get(pk=pk)


def in_thread(func, *args):
    """Run ``func`` on a thread (so on a connection of its own); return its result."""
    box = {}

    def target():
        try:
            box["value"] = func(*args)
        except BaseException as exc:
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(THREAD_DEADLINE)
    assert not thread.is_alive(), f"{func.__name__} on a second connection did not return (blocked?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- insert_tasks ---------------------------------------------------------


def test_insert_single_returns_its_id(ops, now):
    (pk,) = ops.insert_tasks([task(now, "one", queue="q1", priority=3, ttl=12.5, max_attempts=4)])
    saved = row(pk)
    assert json.loads(saved.args) == "one"
    assert (saved.status, saved.queue, saved.priority, saved.ttl, saved.max_attempts) == (
        WAITING,
        "q1",
        3,
        12.5,
        4,
    )
    assert (saved.attempts, saved.worker_id, saved.history, saved.result) == (0, "", [], None)


def test_insert_bulk_returns_ids_in_order(ops, now):
    ids = ops.insert_tasks([task(now, f"n{i}") for i in range(25)])
    assert len(set(ids)) == 25
    assert [json.loads(row(pk).args) for pk in ids] == [f"n{i}" for i in range(25)]


def test_insert_nothing(ops):
    assert ops.insert_tasks([]) == []


FIELDS = [
    *("function", "kind", "queue", "priority", "status", "ttl", "attempts", "max_attempts", "options"),
    *("worker_id", "error_message", "traceback", "history", "schedule_id", "result"),
    *("created_at", "scheduled_at"),
]


def test_insert_calls_writes_the_template_once_per_call_in_order(ops, now):
    """A bulk enqueue of one function: rows as insert_tasks writes them, arguments in order."""
    template = task(
        now, "template", delay=30, queue="q2", priority=-2, ttl=7.5, max_attempts=3, options={"backoff": 2.0}
    )
    calls = [json.dumps(f"c{i} é中") for i in range(40)]
    ids = ops.insert_calls(template, calls)
    assert len(set(ids)) == 40
    assert [row(pk).args for pk in ids] == calls
    (reference,) = ops.insert_tasks([template.with_args(calls[0])])
    expected = TaskQueue.objects.filter(pk=reference).values(*FIELDS).get()
    assert list(TaskQueue.objects.filter(pk__in=ids).values(*FIELDS).distinct()) == [expected]


@pytest.mark.parametrize("count", [0, 1])
def test_insert_calls_of_none_or_one(ops, now, count):
    ids = ops.insert_calls(task(now), ['"only"'] * count)
    assert [row(pk).args for pk in ids] == ['"only"'] * count


def test_insert_keeps_json_and_microseconds(ops, now):
    when = now.replace(microsecond=123457) + timedelta(seconds=5)
    new = task(now, options={"retry_delay": 0.5, "timeout": None, "nested": [1, {"a": "é"}]})
    new.scheduled_at = when
    (pk,) = ops.insert_tasks([new])
    saved = row(pk)
    assert saved.options == {"retry_delay": 0.5, "timeout": None, "nested": [1, {"a": "é"}]}
    assert saved.scheduled_at == when
    assert ops.next_due(None) == when


@only_on["mysql"]
@pytest.mark.parametrize("step", [1, 3])
def test_insert_without_returning_computes_consecutive_ids(ops, now, step):
    """MySQL has no INSERT ... RETURNING: ids come from LAST_INSERT_ID() and the increment."""
    from autotask.db.mysql import MysqlDriver

    class MysqlWithoutReturning(MysqlDriver):
        supports_returning = False

    plain = MysqlWithoutReturning(connection)
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION auto_increment_increment = %s", [step])
        try:
            ids = plain.insert_tasks([task(now, f"m{i}") for i in range(10)])
            single = plain.insert_tasks([task(now, "single")])
        finally:
            cursor.execute("SET SESSION auto_increment_increment = 1")
    assert [json.loads(row(pk).args) for pk in ids] == [f"m{i}" for i in range(10)]
    assert json.loads(row(single[0]).args) == "single"
    assert ids[1] - ids[0] == step


def test_watched_queries_see_the_enqueue(ops, now):
    """An enqueue runs on the driver's cursor, except while something watches the queries."""
    seen = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        (wrapped,) = ops.insert_tasks([task(now, "wrapped")])
        ops.insert_calls(task(now), ['"bulk1"', '"bulk2"'])
    with CaptureQueriesContext(connection) as captured:
        (logged,) = ops.insert_tasks([task(now, "logged")])
    inserts = [sql for sql in seen if "INSERT INTO" in sql]
    assert len(inserts) == 2, seen
    assert any("INSERT INTO" in query["sql"] for query in captured.captured_queries)
    assert [json.loads(row(pk).args) for pk in (wrapped, logged)] == ["wrapped", "logged"]


def test_enqueue_errors_are_djangos_and_leave_the_connection_usable(ops, now):
    broken = task(now, "no queue")
    broken.queue = None  # NOT NULL: every database refuses it
    with pytest.raises(IntegrityError), transaction.atomic():
        ops.insert_tasks([broken])
    (pk,) = ops.insert_tasks([task(now, "after")])
    assert json.loads(row(pk).args) == "after"


@only_on["sqlite"]
@pytest.mark.django_db(transaction=True)
def test_sqlite_enqueue_releases_the_write_lock_at_once(ops, now):
    """In autocommit, an enqueue's INSERT ... RETURNING commits before it returns.

    sqlite3 ends a statement (and, in autocommit, its transaction) only once
    every row it returns has been fetched.
    """
    import sqlite3

    ops.insert_tasks([task(now, "first")])
    assert len(ops.insert_calls(task(now), ['"a"', '"b"', '"c"'])) == 3
    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" at once if the enqueue still held it
        other.execute("ROLLBACK")
    finally:
        other.close()


# -- claim ----------------------------------------------------------------


@every_claim_path
def test_claim_marks_running_with_a_lease(ops, now):
    (pk,) = ops.insert_tasks([task(now, "a", options={"k": 1}, max_attempts=3)])
    (claimed,) = ops.claim("w1", None, 5, now + LEASE, now)
    assert (claimed.id, claimed.attempts, claimed.max_attempts) == (pk, 1, 3)
    assert (claimed.options, claimed.history, claimed.function) == ({"k": 1}, [], "tests.app.tasks.echo")
    saved = row(pk)
    assert (saved.status, saved.worker_id, saved.attempts) == (RUNNING, "w1", 1)
    assert saved.started_at == now
    assert saved.lease_expires_at == now + LEASE


@every_claim_path
def test_claim_order_priority_then_due_time_then_id(ops, now):
    ops.insert_tasks(
        [
            task(now, "low", priority=-1, delay=-9),
            task(now, "late", delay=-1),
            task(now, "early", delay=-5),
            task(now, "high", priority=5),
            task(now, "late-twin", delay=-1),
        ]
    )
    assert names(ops.claim("w", None, 2, now + LEASE, now)) == ["high", "early"]
    assert names(ops.claim("w", None, 10, now + LEASE, now)) == ["late", "late-twin", "low"]


@every_claim_path
def test_claim_respects_limit_and_due_time(ops, now):
    ops.insert_tasks([task(now, f"d{i}") for i in range(5)] + [task(now, "future", delay=60)])
    assert len(ops.claim("w", None, 3, now + LEASE, now)) == 3
    assert names(ops.claim("w", None, 10, now + LEASE, now)) == ["d3", "d4"]
    assert ops.claim("w", None, 10, now + LEASE, now) == []
    later = now + timedelta(seconds=60)
    assert names(ops.claim("w", None, 10, later + LEASE, later)) == ["future"]


@every_claim_path
@pytest.mark.parametrize(
    ("queues", "expected"),
    [(None, {"a", "b", "c"}), (["b"], {"b"}), (["a", "c", "nowhere"], {"a", "c"}), (["nowhere"], set())],
)
def test_claim_serves_only_its_queues(ops, now, queues, expected):
    ops.insert_tasks([task(now, name, queue=name) for name in ("a", "b", "c")])
    assert set(names(ops.claim("w", queues, 10, now + LEASE, now))) == expected


@every_claim_path
def test_claim_never_takes_running_or_finished_rows(ops, now):
    ids = ops.insert_tasks([task(now, s) for s in ("running", "done", "error", "cancelled", "waiting")])
    for pk, status in zip(ids, (RUNNING, DONE, ERROR, CANCELLED), strict=False):
        TaskQueue.objects.filter(pk=pk).update(status=status)
    assert names(ops.claim("w", None, 10, now + LEASE, now)) == ["waiting"]


@every_claim_path
def test_claim_counts_attempts(ops, now):
    (pk,) = ops.insert_tasks([task(now, max_attempts=3)])
    ops.claim("w", None, 1, now + LEASE, now)
    TaskQueue.objects.filter(pk=pk).update(status=WAITING)  # as a retry leaves it
    (again,) = ops.claim("w", None, 1, now + LEASE, now)
    assert again.attempts == row(pk).attempts == 2


@every_claim_path
def test_claim_ahead_holds_the_rows_without_starting_them(ops, now):
    first, second = ops.insert_tasks([task(now, "a", max_attempts=3), task(now, "b", max_attempts=3)])
    TaskQueue.objects.filter(pk=second).update(attempts=1, started_at=now - LEASE)  # retried once already
    claimed = ops.claim("w1", None, 5, now + LEASE, now, started=False)
    assert [(t.id, t.attempts) for t in claimed] == [(first, 0), (second, 1)]
    rows = TaskQueue.objects.filter(pk__in=[first, second]).order_by("pk")
    assert [(r.status, r.worker_id, r.attempts, r.started_at, r.lease_expires_at) for r in rows] == [
        (RUNNING, "w1", 0, None, now + LEASE),
        (RUNNING, "w1", 1, None, now + LEASE),
    ]
    assert ops.claim("w2", None, 5, now + LEASE, now) == []  # held, not claimable again


@every_claim_path
def test_finish_and_claim_ahead(ops, now):
    done, ahead = ops.insert_tasks([task(now, "done"), task(now, "ahead")])
    ops.claim("w", None, 1, now + LEASE, now)
    (claimed,) = ops.finish_and_claim("w", [outcome(done, now)], None, 5, now + LEASE, now, started=False)
    assert (claimed.id, claimed.attempts, row(ahead).started_at, row(done).status) == (ahead, 0, None, DONE)


def test_start_marks_only_claimed_ahead_rows_still_held(ops, now):
    mine, started, lost, other = ops.insert_tasks([task(now, f"s{i}", max_attempts=2) for i in range(4)])
    ops.claim("w", None, 1, now + LEASE, now)  # ``mine``: started at once
    ops.claim("w", None, 3, now + LEASE, now, started=False)
    TaskQueue.objects.filter(pk=lost).update(status=WAITING, worker_id="")  # recovered meanwhile
    TaskQueue.objects.filter(pk=other).update(worker_id="other")  # and claimed elsewhere
    later = now + timedelta(seconds=1)
    assert ops.start("w", [started, lost, other], later) == [started]
    assert (row(started).started_at, row(started).attempts) == (later, 1)
    assert (row(mine).started_at, row(mine).attempts) == (now, 1)
    assert [(row(pk).started_at, row(pk).attempts) for pk in (lost, other)] == [(None, 0), (None, 0)]
    assert ops.start("w", [started], later) == []  # started once only
    assert ops.start("w", [], later) == []


def test_start_of_many_rows(ops, now):
    ids = ops.insert_tasks([task(now, f"m{i}") for i in range(60)])
    ops.claim("w", None, 60, now + LEASE, now, started=False)
    assert sorted(ops.start("w", ids[:50], now)) == ids[:50]
    assert TaskQueue.objects.filter(started_at=now, attempts=1).count() == 50
    assert TaskQueue.objects.filter(started_at=None, attempts=0).count() == 10


# -- claim exclusivity, from a second connection ----------------------------


@pytest.mark.django_db(transaction=True)
@every_claim_path
def test_open_claim_is_skipped_not_waited_for(ops, now):
    if not ops.supports_skip_locked:
        pytest.skip("needs SELECT ... FOR UPDATE SKIP LOCKED")
    ops.insert_tasks([task(now, f"s{i}") for i in range(4)])
    claim_elsewhere = lambda: type(ops)(connection).claim("B", None, 10, now + LEASE, now)  # noqa: E731
    with transaction.atomic():
        mine = ops.claim("A", None, 2, now + LEASE, now)  # rows stay locked until commit
        theirs = in_thread(claim_elsewhere)
    assert names(mine) == ["s0", "s1"]
    assert names(theirs) == ["s2", "s3"]
    assert {r.worker_id for r in TaskQueue.objects.all()} == {"A", "B"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite has one writer: there is nothing to skip")
@every_claim_path
def test_rolled_back_claim_gives_rows_back(ops, now):
    ops.insert_tasks([task(now, f"r{i}") for i in range(2)])
    with pytest.raises(RuntimeError), transaction.atomic():
        assert len(ops.claim("A", None, 2, now + LEASE, now)) == 2
        raise RuntimeError("worker died mid-claim")
    assert names(in_thread(lambda: type(ops)(connection).claim("B", None, 10, now + LEASE, now))) == [
        "r0",
        "r1",
    ]


def claim_until_empty(worker_id, now, batch, ops_class=None):
    ops = ops_class(connection) if ops_class else get_ops()
    seen = []
    while claimed := ops.claim(worker_id, None, batch, now + LEASE, now):
        seen.extend(t.id for t in claimed)
    return seen


def claimers(ops_class, now):
    """Four connections claim the same queue at once; return what each got."""
    results, errors = {}, []
    start = threading.Barrier(4)

    def run(worker_id):
        try:
            start.wait()
            results[worker_id] = claim_until_empty(worker_id, now, 7, ops_class)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(f"w{i}",), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_DEADLINE * 3)
    assert not any(t.is_alive() for t in threads), "a claimer is stuck"
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ops_class", claim_variants(), ids=lambda cls: cls.__name__ if cls else "default")
def test_concurrent_claimers_never_share_a_task(ops, now, ops_class):
    ids = ops.insert_tasks([task(now, f"c{i}") for i in range(300)])
    results = claimers(ops_class, now)
    claimed = [pk for got in results.values() for pk in got]
    assert sorted(claimed) == sorted(ids)  # each task exactly once
    if VENDOR != "sqlite":  # SQLite's busy wait lets one writer win every round
        assert sum(1 for got in results.values() if got) >= 2, "the claims did not overlap at all"
    for worker_id, got in results.items():
        assert set(TaskQueue.objects.filter(worker_id=worker_id).values_list("id", flat=True)) == set(got)


# -- finish -----------------------------------------------------------------


def outcome(pk, now, status=DONE, **fields):
    return Outcome(id=pk, status=status, finished_at=now, expires_at=now + timedelta(seconds=300), **fields)


def test_finish_writes_done(ops, now):
    (pk,) = ops.insert_tasks([task(now)])
    ops.claim("w", None, 1, now + LEASE, now)
    ops.finish("w", [outcome(pk, now, result='"ok"', history=[{"attempt": 1}])])
    saved = row(pk)
    assert (saved.status, saved.result, saved.history) == (DONE, '"ok"', [{"attempt": 1}])
    assert (saved.finished_at, saved.expires_at) == (now, now + timedelta(seconds=300))
    assert saved.lease_expires_at is None


def test_finish_retry_goes_back_to_waiting(ops, now):
    (pk,) = ops.insert_tasks([task(now, max_attempts=2)])
    ops.claim("w", None, 1, now + LEASE, now)
    retry_at = now + timedelta(seconds=7)
    ops.finish("w", [Outcome(id=pk, status=WAITING, finished_at=now, error_message="e", retry_at=retry_at)])
    saved = row(pk)
    assert (saved.status, saved.scheduled_at, saved.finished_at, saved.error_message) == (
        WAITING,
        retry_at,
        None,
        "e",
    )
    assert ops.claim("w", None, 1, now + LEASE, now) == []
    assert [t.id for t in ops.claim("w", None, 1, retry_at + LEASE, retry_at)] == [pk]


def test_finish_is_guarded_by_status_and_worker(ops, now):
    lost, stolen, mine = ops.insert_tasks([task(now, "lost"), task(now, "stolen"), task(now, "mine")])
    ops.claim("w", None, 3, now + LEASE, now)
    TaskQueue.objects.filter(pk=lost).update(status=WAITING, worker_id="")  # recovered meanwhile
    TaskQueue.objects.filter(pk=stolen).update(worker_id="other")  # recovered and claimed again
    ops.finish("w", [outcome(pk, now) for pk in (lost, stolen, mine)])
    assert [row(pk).status for pk in (lost, stolen, mine)] == [WAITING, RUNNING, DONE]
    ops.finish("w", [])


def test_finish_batch_error_outcome(ops, now):
    ids = ops.insert_tasks([task(now, f"b{i}") for i in range(3)])
    ops.claim("w", None, 3, now + LEASE, now)
    ops.finish("w", [outcome(pk, now, status=ERROR, error_message="boom", traceback="tb") for pk in ids])
    assert set(TaskQueue.objects.values_list("status", "error_message", "traceback")) == {
        (ERROR, "boom", "tb")
    }


# -- leases -------------------------------------------------------------------


def test_renew_leases_only_extends_own_running_tasks(ops, now):
    mine, theirs, _ = ops.insert_tasks(
        [task(now, "mine"), task(now, "theirs"), task(now, "waiting", delay=60)]
    )
    ops.claim("me", None, 1, now + LEASE, now)
    ops.claim("them", None, 1, now + LEASE, now)
    later = now + 3 * LEASE
    assert ops.renew_leases("me", later) == 1
    assert row(mine).lease_expires_at == later
    assert row(theirs).lease_expires_at == now + LEASE
    assert ops.renew_leases("nobody", later) == 0


def test_renew_leases_of_named_tasks_only(ops, now):
    running, lost = ops.insert_tasks([task(now, "running"), task(now, "lost")])
    ops.claim("me", None, 2, now + LEASE, now)
    later = now + 3 * LEASE
    # A claim whose reply never arrived is not renewed: it must lapse.
    assert ops.renew_leases("me", later, task_ids=[running]) == 1
    assert (row(running).lease_expires_at, row(lost).lease_expires_at) == (later, now + LEASE)
    assert ops.renew_leases("me", later, task_ids=[]) == 0


def test_release_gives_back_the_attempt_of_a_task_marked_started_but_never_run(ops, now):
    marked, ahead = ops.insert_tasks(
        [task(now, "marked", max_attempts=2), task(now, "ahead", max_attempts=2)]
    )
    claimed = ops.claim("me", None, 2, now + LEASE, now, started=False)
    ops.start("me", [marked], now)
    assert ops.release("me", claimed) == 2
    assert [(row(pk).status, row(pk).attempts, row(pk).started_at) for pk in (marked, ahead)] == [
        (WAITING, 0, None),
        (WAITING, 0, None),
    ]


def test_release_gives_unstarted_claims_back(ops, now):
    kept, given_back, taken_over = ops.insert_tasks([task(now, f"x{i}", max_attempts=2) for i in range(3)])
    claimed = {t.id: t for t in ops.claim("me", None, 3, now + LEASE, now)}
    TaskQueue.objects.filter(pk=taken_over).update(worker_id="other")
    assert ops.release("me", [claimed[given_back], claimed[taken_over]]) == 1
    back = row(given_back)
    assert (back.status, back.worker_id, back.attempts, back.lease_expires_at) == (WAITING, "", 0, None)
    assert (row(kept).status, row(taken_over).worker_id) == (RUNNING, "other")
    assert ops.release("me", []) == 0
    assert [t.id for t in ops.claim("me", None, 3, now + LEASE, now)] == [given_back]


def test_lapsed_leases_oldest_first_with_limit(ops, now):
    ids = ops.insert_tasks([task(now, f"l{i}", max_attempts=2) for i in range(4)])
    ops.claim("w", None, 4, now + LEASE, now)
    for offset, pk in zip((30, 10, 20), ids, strict=False):  # the fourth keeps a fresh lease
        TaskQueue.objects.filter(pk=pk).update(lease_expires_at=now - timedelta(seconds=offset))
    TaskQueue.objects.filter(pk=ids[2]).update(started_at=None, attempts=0)  # claimed ahead, never started
    lapsed = ops.lapsed_leases(now, 2)
    assert [entry[0] for entry in lapsed] == [ids[0], ids[2]]
    assert lapsed == [
        (ids[0], 1, 2, "w", [], True, {}, "default"),
        (ids[2], 0, 2, "w", [], False, {}, "default"),
    ]
    assert [entry[0] for entry in ops.lapsed_leases(now, 10)] == [ids[0], ids[2], ids[1]]


def test_release_lapsed_is_compare_and_set(ops, now):
    renewed, lapsed = ops.insert_tasks([task(now, "renewed", max_attempts=2), task(now, "lapsed")])
    ops.claim("w", None, 2, now - timedelta(seconds=1), now)  # a lease already over
    assert {entry[0] for entry in ops.lapsed_leases(now, 10)} == {renewed, lapsed}
    ops.renew_leases("w", now + LEASE)  # the worker was alive after all
    TaskQueue.objects.filter(pk=lapsed).update(lease_expires_at=now - timedelta(seconds=1))
    retry = Outcome(id=renewed, status=WAITING, finished_at=now, error_message="lost", retry_at=now)
    fail = outcome(lapsed, now, status=ERROR, error_message="lost", history=[{"attempt": 1}])
    assert ops.release_lapsed(now, [retry, fail]) == [lapsed]
    assert (row(renewed).status, row(renewed).worker_id) == (RUNNING, "w")
    saved = row(lapsed)
    assert (saved.status, saved.worker_id, saved.error_message, saved.history) == (
        ERROR,
        "",
        "lost",
        [{"attempt": 1}],
    )
    assert saved.lease_expires_at is None
    assert ops.release_lapsed(now, [fail]) == []
    assert ops.release_lapsed(now, []) == []


def test_release_lapsed_writes_a_batch_in_one_go(ops, now):
    ids = ops.insert_tasks([task(now, f"b{i}", max_attempts=2) for i in range(150)])
    ops.claim("w", None, 150, now - timedelta(seconds=1), now)
    retry_at = now + timedelta(seconds=5)
    outcomes = [
        Outcome(
            id=pk,
            status=WAITING,
            finished_at=now,
            error_message=f"lost {pk}",
            retry_at=retry_at,
            history=[{"n": pk}],
        )
        for pk in ids
    ]
    assert sorted(ops.release_lapsed(now, outcomes)) == ids
    saved = TaskQueue.objects.filter(pk__in=ids)
    assert {(r.status, r.worker_id, r.attempts, r.scheduled_at, r.lease_expires_at) for r in saved} == {
        (WAITING, "", 1, retry_at, None)
    }
    assert all(r.error_message == f"lost {r.pk}" and r.history == [{"n": r.pk}] for r in saved)


def test_unclaim_lapsed_gives_back_only_unstarted_lapsed_rows(ops, now):
    unstarted, started, renewed = ops.insert_tasks([task(now, f"u{i}", max_attempts=2) for i in range(3)])
    ops.claim("w", None, 3, now - timedelta(seconds=1), now)
    TaskQueue.objects.filter(pk__in=[unstarted, renewed]).update(started_at=None, attempts=0)
    TaskQueue.objects.filter(pk=unstarted).update(
        error_message="an earlier attempt", history=[{"attempt": 1}]
    )
    TaskQueue.objects.filter(pk=renewed).update(lease_expires_at=now + LEASE)
    assert ops.unclaim_lapsed(now, [unstarted, started, renewed]) == 1
    back = row(unstarted)
    assert (back.status, back.worker_id, back.attempts, back.lease_expires_at, back.started_at) == (
        WAITING,
        "",
        0,
        None,
        None,
    )
    assert (back.error_message, back.history) == ("an earlier attempt", [{"attempt": 1}])
    assert (row(started).status, row(renewed).status) == (RUNNING, RUNNING)
    assert ops.unclaim_lapsed(now, []) == 0
    assert [t.id for t in ops.claim("w2", None, 3, now + LEASE, now)] == [unstarted]


# -- prune ----------------------------------------------------------------------


def test_prune_deletes_expired_finished_rows_in_batches(ops, now):
    ids = ops.insert_tasks([task(now, f"p{i}") for i in range(12)])
    past = now - timedelta(seconds=1)
    expired, fresh, waiting, running = ids[:7], ids[7:9], ids[9:11], ids[11:]
    for i, pk in enumerate(expired):
        TaskQueue.objects.filter(pk=pk).update(status=FINISHED[i % len(FINISHED)], expires_at=past)
    TaskQueue.objects.filter(pk__in=fresh).update(status=DONE, expires_at=now + timedelta(seconds=60))
    # Waiting and running rows are never deleted, whatever their expiry says.
    TaskQueue.objects.filter(pk__in=waiting).update(status=WAITING, expires_at=past)
    TaskQueue.objects.filter(pk__in=running).update(status=RUNNING, expires_at=past)
    assert [ops.prune(now, 3) for _ in range(4)] == [3, 3, 1, 0]
    assert sorted(TaskQueue.objects.values_list("id", flat=True)) == sorted(fresh + waiting + running)


def test_prune_at_the_boundary(ops, now):
    (pk,) = ops.insert_tasks([task(now)])
    TaskQueue.objects.filter(pk=pk).update(status=DONE, expires_at=now)
    assert ops.prune(now - timedelta(microseconds=1), 10) == 0
    assert ops.prune(now, 10) == 1


@pytest.mark.django_db(transaction=True)
@only_on["postgresql"]
def test_prune_skips_rows_another_transaction_holds(ops, now):
    """Workers pruning at once never wait for each other, and so never deadlock: held rows wait a pass."""
    ids = ops.insert_tasks([task(now, f"p{i}") for i in range(5)])
    TaskQueue.objects.filter(pk__in=ids).update(status=DONE, expires_at=now - timedelta(seconds=1))

    def prune_elsewhere():
        with connection.cursor() as cursor:
            # Waiting for the held rows would fail here, not hang the test.
            cursor.execute("SET lock_timeout = '2s'")
        return type(ops)(connection).prune(now, 10)

    with transaction.atomic():
        # Locked as another worker's prune, or an operator's action, locks them.
        held = list(TaskQueue.objects.select_for_update().filter(pk__in=ids[:2]).values_list("id", flat=True))
        assert in_thread(prune_elsewhere) == 3
    assert sorted(held) == ids[:2]
    assert sorted(TaskQueue.objects.values_list("id", flat=True)) == ids[:2]
    assert ops.prune(now, 10) == 2
    assert not TaskQueue.objects.exists()


# -- next_due, cancel ---------------------------------------------------------------


def test_next_due_is_the_earliest_waiting_task(ops, now):
    assert ops.next_due(None) is None
    running, *_ = ops.insert_tasks(
        [task(now, delay=1), task(now, delay=20), task(now, delay=10), task(now, delay=5, queue="other")]
    )
    TaskQueue.objects.filter(pk=running).update(status=RUNNING)
    assert ops.next_due(None) == now + timedelta(seconds=5)
    assert ops.next_due(["default"]) == now + timedelta(seconds=10)
    assert ops.next_due(["default", "other"]) == now + timedelta(seconds=5)
    assert ops.next_due(["nowhere"]) is None


def test_cancel_only_waiting_tasks(ops, now):
    waiting, running = ops.insert_tasks([task(now, "w"), task(now, "r")])
    TaskQueue.objects.filter(pk=running).update(status=RUNNING)
    assert ops.cancel(waiting, now) is True
    assert ops.cancel(waiting, now) is False
    assert ops.cancel(running, now) is False
    assert ops.cancel(10**12, now) is False
    saved = row(waiting)
    assert (saved.status, saved.finished_at) == (CANCELLED, now)
    assert saved.expires_at > now
    assert ops.claim("w", None, 10, now + LEASE, now) == []


# -- indexes --------------------------------------------------------------------


def index_names():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TaskQueue._meta.db_table)
    return {name for name, info in constraints.items() if info["index"]}


def test_migration_created_the_vendor_indexes(ops):
    assert set(ops.INDEXES) <= index_names()


@pytest.mark.django_db(transaction=True)
def test_drop_and_create_indexes(ops):
    try:
        with connection.schema_editor() as editor:
            ops.drop_indexes(editor)
        assert not set(ops.INDEXES) & index_names()
    finally:
        with connection.schema_editor() as editor:
            ops.create_indexes(editor)
    assert set(ops.INDEXES) <= index_names()


def explain(ops, queues, now):
    """Return the plan of the claim's SELECT as dicts, one per row of EXPLAIN output."""
    sql, params = ops._claim_select(queues, 10, now)
    prefix = "EXPLAIN QUERY PLAN " if VENDOR == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        if VENDOR == "postgresql":
            cursor.execute(f"ANALYZE {ops.table}")
        cursor.execute(prefix + sql, params)
        columns = [c[0].lower() for c in cursor.description]
        return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]


def fill_history(ops, now):
    """A backlog among many finished rows: the claim must not sort or scan them all."""
    ids = ops.insert_tasks([task(now, f"h{i}", queue=f"q{i % 3}", priority=i % 5) for i in range(4000)])
    TaskQueue.objects.filter(pk__in=ids[:3000]).update(status=DONE, expires_at=now)


@only_on["postgresql"]
@CLAIM_INDEXES
def test_postgresql_claim_uses_the_claim_index(ops, now, queues, index):
    fill_history(ops, now)
    plan = "\n".join(line["query plan"] for line in explain(ops, queues, now))
    assert f"Index Scan using {index}" in plan, plan
    assert "Sort" not in plan, plan  # the index hands rows over in claim order


@only_on["mysql"]
@CLAIM_INDEXES
def test_mysql_claim_reads_index_order_without_a_sort(ops, now, queues, index):
    # A filesort would make InnoDB lock every due row, not just the LIMIT it returns.
    fill_history(ops, now)
    # The task table's row (the paused queues' subquery has its own: materialised once).
    (plan,) = [row for row in explain(ops, queues, now) if row["table"] == "autotask_taskqueue"]
    assert plan["key"] == index, plan
    assert "filesort" not in (plan["extra"] or ""), plan


@only_on["mysql"]
@pytest.mark.django_db(transaction=True)  # DDL commits on MySQL
def test_mysql_claim_without_descending_indexes_stays_in_index_order(now):
    """MariaDB 10.6/10.7 build the claim indexes ascending: claims then go one priority at a time."""
    from autotask.db.mysql import MysqlDriver

    class AscendingOnly(MysqlDriver):
        supports_descending_indexes = False
        INDEXES = {
            name: (columns.replace(" DESC", ""), condition)
            for name, (columns, condition) in MysqlDriver.INDEXES.items()
        }

    ops, statements = AscendingOnly(connection), []
    with connection.schema_editor() as editor:
        ops.drop_indexes(editor)
        ops.create_indexes(editor)
    try:
        ops.insert_tasks([task(now, f"p{i % 3}-{i}", priority=i % 3) for i in range(600)])

        def record(execute, sql, params, many, context):
            statements.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record), transaction.atomic():
            mine = ops.claim("A", None, 4, now + LEASE, now)
            theirs = in_thread(lambda: AscendingOnly(connection).claim("B", None, 4, now + LEASE, now))
        with connection.cursor() as cursor:
            for sql, params in statements:
                if sql.startswith("SELECT"):
                    cursor.execute("EXPLAIN " + sql, params)
                    extra = cursor.fetchall()[0][-1] or ""
                    assert "filesort" not in extra, (sql, extra)
    finally:
        with connection.schema_editor() as editor:
            ops.drop_indexes(editor)
            get_ops().create_indexes(editor)
    assert names(mine) == ["p2-2", "p2-5", "p2-8", "p2-11"]
    assert names(theirs) == ["p2-14", "p2-17", "p2-20", "p2-23"]  # not blocked by a sort's locks


@only_on["sqlite"]
@CLAIM_INDEXES
def test_sqlite_claim_uses_the_claim_index(ops, now, queues, index):
    fill_history(ops, now)
    plan = " / ".join(line["detail"] for line in explain(ops, queues, now))
    assert f"USING INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


# -- MySQL specifics ------------------------------------------------------------


@only_on["mysql"]
@pytest.mark.django_db(transaction=True)  # the lock holder must see the row
def test_mysql_lock_conflicts_are_transient_and_retried(ops, now):
    """A real lock wait timeout: classified as a conflict, and run again until it passes."""
    (pk,) = ops.insert_tasks([task(now)])
    calls = []

    def update():
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            cursor.execute(f"UPDATE {ops.table} SET priority = 9 WHERE id = %s", [pk])
        return "updated"

    holder_ready, release = threading.Event(), threading.Event()

    def hold_row_lock():
        # Another connection holds the row for the first attempt only.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {ops.table} WHERE id = %s FOR UPDATE", [pk])
            holder_ready.set()
            release.wait(THREAD_DEADLINE)
        connections.close_all()

    holder = threading.Thread(target=hold_row_lock, daemon=True)
    holder.start()
    assert holder_ready.wait(THREAD_DEADLINE)
    with pytest.raises(OperationalError) as info:
        update()
    assert ops._is_lock_conflict(info.value) and ops.is_transient(info.value)

    def update_after_conflict():
        if len(calls) == 1:
            try:
                return update()
            finally:
                release.set()
        return update()

    try:
        assert ops._retrying(update_after_conflict) == "updated"
    finally:
        release.set()
        holder.join(THREAD_DEADLINE)
        connection.close()  # forget the session's lock wait timeout
    assert len(calls) == 3
    assert row(pk).priority == 9


# The module-level django_db mark gives the test below a transaction it must
# not have: the claim has to be the outermost transaction.
@only_on["mysql"]
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("isolation", ["repeatable read", "read committed"])
def test_mysql_open_claim_does_not_hold_up_enqueues(ops, now, isolation):
    """At any session isolation, an enqueue never waits for a claim in progress."""
    ops.insert_tasks([task(now, f"g{i}") for i in range(3)])
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {isolation.upper()}")
    connection.isolation_level = isolation  # what OPTIONS["isolation_level"] would have set
    inserted = []

    def enqueue_elsewhere():
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 2")  # fail, not hang
        return get_ops().insert_tasks([task(now - timedelta(seconds=1), "newcomer")])

    def pause_inside_claim(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR UPDATE" in sql and not inserted:
            # The claim's transaction is open and holds its locks right now.
            inserted.append(in_thread(enqueue_elsewhere))
        return result

    try:
        with connection.execute_wrapper(pause_inside_claim):
            claimed = ops.claim("w", None, 2, now + LEASE, now)
    finally:
        connection.close()  # the next query reconnects with the configured isolation
    assert names(claimed) == ["g0", "g1"]
    assert inserted and row(inserted[0][0]).status == WAITING


# -- the driver contract, listed ------------------------------------------


def drivers():
    from autotask.db.mysql import MysqlDriver
    from autotask.db.postgresql import PostgresDriver
    from autotask.db.sqlite import SqliteDriver

    return [PostgresDriver, SqliteDriver, MysqlDriver]


def public_methods(cls):
    """The methods (and properties) ``cls`` defines itself whose names do not start with "_"."""
    return {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and (callable(value) or isinstance(value, property | staticmethod | classmethod))
    }


@pytest.mark.parametrize("cls", [Driver, *drivers()], ids=lambda cls: cls.__name__)
def test_every_public_method_of_a_driver_is_in_the_contract(cls):
    """What callers may use is listed in Driver.CONTRACT; every other method is private."""
    unlisted = {
        name
        for name in public_methods(cls)
        if name not in Driver.CONTRACT and not name.startswith("supports_")
    }
    assert not unlisted, f"{cls.__name__}: public but not in Driver.CONTRACT: {sorted(unlisted)}"
    assert all(callable(getattr(Driver, name)) for name in Driver.CONTRACT + Driver.HOOKS)


@pytest.mark.parametrize("cls", drivers(), ids=lambda cls: cls.__name__)
def test_a_vendor_overrides_only_the_contract_and_the_hooks_and_provides_a_claim(cls):
    overridden = {name for name in vars(cls) if callable(getattr(Driver, name, None)) and name != "__init__"}
    assert overridden <= set(Driver.CONTRACT) | set(Driver.HOOKS), sorted(
        overridden - set(Driver.CONTRACT) - set(Driver.HOOKS)
    )
    assert cls.vendor != Driver.vendor
    if cls.claim is Driver.claim:  # a claim in one statement
        assert {"DUE", "CLAIM"} <= set(vars(cls._statements(cls(connection))))


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's database-wide write lock")
def test_reserve_takes_sqlites_write_lock_for_the_callers_transaction():
    # An admin action reads, then writes: without the write lock taken first, a
    # worker's commit in between makes its writes fail at once ("database is locked").
    import sqlite3

    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.1, isolation_level=None)
    try:
        with transaction.atomic():
            get_ops("default").reserve()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_reserve_leaves_the_rows_as_they_were():
    pk = TaskQueue.objects.create(function="tests.app.tasks.echo").pk
    with transaction.atomic():
        get_ops("default").reserve()
    assert TaskQueue.objects.filter(pk=pk).count() == 1
