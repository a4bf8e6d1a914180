import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotask.retry import backoff_delay


def test_exponential_with_cap_and_no_jitter():
    delays = [backoff_delay(n, base=2, factor=2, cap=10, jitter=0) for n in range(1, 6)]
    assert delays == [2, 4, 8, 10, 10]


def test_constant_when_factor_is_one():
    assert [backoff_delay(n, base=2, factor=1, jitter=0) for n in (1, 5, 50)] == [2, 2, 2]


def test_jitter_spreads_upward_only():
    assert backoff_delay(1, base=10, jitter=0.1, rand=lambda: 0.0) == pytest.approx(10.0)
    assert backoff_delay(1, base=10, jitter=0.1, rand=lambda: 1.0) == pytest.approx(11.0)


def test_the_cap_is_never_exceeded_by_the_spread():
    assert backoff_delay(5, base=2, factor=2, cap=30, jitter=0.1, rand=lambda: 1.0) == 30
    assert backoff_delay(4, base=2, factor=2, cap=17, jitter=0.1, rand=lambda: 1.0) == 17


def test_a_cap_below_the_first_delay_does_not_shorten_it():
    assert backoff_delay(1, base=60, cap=10, jitter=0.1, rand=lambda: 1.0) == 60
    assert backoff_delay(3, base=60, cap=10, jitter=0.1, rand=lambda: 0.5) == 60


def test_huge_attempt_counts_do_not_overflow():
    assert backoff_delay(10_000, base=2, factor=10, cap=60, jitter=0) == 60


def test_attempt_counts_from_one():
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, base=1)


seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    attempt=st.integers(min_value=1, max_value=200),
    base=seconds,
    factor=st.floats(min_value=1, max_value=10, allow_nan=False),
    cap=seconds,
    jitter=st.floats(min_value=0, max_value=1, allow_nan=False),
    rand=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_a_retry_never_waits_less_than_asked(attempt, base, factor, cap, jitter, rand):
    delay = backoff_delay(attempt, base=base, factor=factor, cap=cap, jitter=jitter, rand=lambda: rand)
    growth = factor ** (attempt - 1) if factor == 1 or attempt < 64 else float("inf")
    asked = min(base * growth if base else 0.0, cap)
    assert delay >= base, "shorter than retry_delay"
    assert delay >= asked, "shorter than the backoff asked for"
    assert delay <= max(cap, base), "past the cap"
