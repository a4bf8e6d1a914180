"""Retry back-off as a pure value."""

import random


def backoff_delay(attempt, base, factor=2.0, cap=3600.0, jitter=0.1, rand=random.random):
    """Return the seconds to wait before retry number ``attempt`` (1 for the first retry).

    The delay asked for is exponential (``base * factor ** (attempt - 1)``)
    and capped at ``cap``, but never below ``base``: a retry waits at least
    as long as asked.  The spread that keeps tasks failing together from
    retrying in the same instant goes upward only, by up to ``jitter`` (a
    fraction), and never past the cap: ``cap`` is never exceeded (unless
    ``base`` itself is larger, when every retry waits exactly ``base``).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = max(cap, base)
    # Compare exponents rather than computing factor ** attempt, which can
    # overflow a float for large attempt counts.
    delay = base * factor ** (attempt - 1) if factor <= 1 or attempt < 64 else ceiling
    delay = max(base, min(delay, ceiling))
    return min(ceiling, delay * (1 + jitter * rand()))
