"""What a user's type checker sees of autotask's public API.

Not a test module (pytest does not collect it): tests/unit/test_typing.py
runs mypy on it.  A line that ends with ``# E: <code>`` must be reported
with that error code, and no other line may be: the ``assert_type`` lines
pin what mypy infers.
"""

from typing import assert_type

from autotask import testing
from autotask.conf import conf
from autotask.definitions.schedules import ScheduledFunction
from autotask.tasks import Call, DelayedTask, cron_task, delayed_task, periodic_task


@delayed_task
def add(a: int, b: int) -> int:
    return a + b


@delayed_task(delay=5, retries=2, queue="mail", priority=10, timeout=30.0, failed_ttl=None)
def greet(name: str) -> str:
    return f"Hello {name}"


@periodic_task(seconds=60)
def tick() -> None:
    pass


@cron_task(cron="*/15 * * * *")
def report() -> dict[str, int]:
    return {}


assert_type(add(1, 2), DelayedTask[int])
assert_type(add(1, 2).result, int | None)
assert_type(greet("Ada").result, str | None)
assert_type(greet.using(delay=0, queue="now")("Ada"), DelayedTask[str])
assert_type(add.enqueue_many([(1, 2), Call(3, b=4)]), list[DelayedTask[int]])
assert_type(add.run(1, 2), int)
assert_type(add(1, 2).wait(timeout=1), bool)
assert_type(add(1, 2).cancel(), bool)
assert_type(tick, ScheduledFunction[[], None])
assert_type(report.run(), dict[str, int])
assert_type(testing.run_due(), list[testing.Ran])
assert_type(conf.DATABASE, str)
assert_type(conf.FAILED_TTL, float | None)


# -- what the checker must refuse ----------------------------------------------


@delayed_task(delay="soon")  # E: call-overload
def late() -> None:
    pass


@periodic_task(seconds="hourly")  # E: call-overload
def hourly() -> None:
    pass


total: int = add(1, 2).result  # E: assignment
add("1", 2)  # E: arg-type
greet.run(name=3)  # E: arg-type
add.using(retries="3")  # E: arg-type
add.using(dealy=5)  # E: call-arg
database = conf.DATABSE  # E: attr-defined
