import pytest

from autotask.retry import backoff_delay


def test_exponential_with_cap_and_no_jitter():
    delays = [backoff_delay(n, base=2, factor=2, cap=10, jitter=0) for n in range(1, 6)]
    assert delays == [2, 4, 8, 10, 10]


def test_constant_when_factor_is_one():
    assert [backoff_delay(n, base=2, factor=1, jitter=0) for n in (1, 5, 50)] == [2, 2, 2]


def test_jitter_spreads_within_bounds():
    assert backoff_delay(1, base=10, jitter=0.1, rand=lambda: 0.0) == pytest.approx(9.0)
    assert backoff_delay(1, base=10, jitter=0.1, rand=lambda: 1.0) == pytest.approx(11.0)


def test_huge_attempt_counts_do_not_overflow():
    assert backoff_delay(10_000, base=2, factor=10, cap=60, jitter=0) == 60


def test_attempt_counts_from_one():
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, base=1)
