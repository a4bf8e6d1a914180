"""Benchmarks of autotask against the plain-SQL limit, measured in the same run.

Run with ``python -m benchmarks`` (or ``make bench``); not part of the test suite.
"""
