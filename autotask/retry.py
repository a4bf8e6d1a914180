"""Retry back-off as a pure value."""

import random


def backoff_delay(attempt, base, factor=2.0, cap=3600.0, jitter=0.1, rand=random.random):
    """Return the seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential (``base * factor ** (attempt - 1)``), capped at ``cap``, then
    spread by up to ``jitter`` (a fraction) either way so that tasks failing
    together do not all retry in the same instant.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # Compare exponents rather than computing factor ** attempt, which can
    # overflow a float for large attempt counts.
    delay = base * factor ** (attempt - 1) if factor <= 1 or attempt < 64 else cap
    delay = min(delay, cap)
    return max(0.0, delay * (1 + jitter * (2 * rand() - 1)))
