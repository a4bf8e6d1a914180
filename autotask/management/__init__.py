"""Helpers shared by autotask's management commands."""

import argparse
import re

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def positive_int(value):
    """Parse a command-line integer of at least 1 (argparse ``type=``)."""
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def non_negative_int(value):
    """Parse a command-line integer of at least 0 (argparse ``type=``)."""
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


def duration(value):
    """Parse a duration: seconds (``3600``) or a number with s, m, h or d (``12h``, ``7d``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid duration {value!r}: give seconds (3600) or a number followed by s, m, h or d "
            "(90m, 12h, 7d)"
        )
    number, unit = match.groups()
    return float(number) * DURATION_UNITS[unit or "s"]
