"""Helpers shared by autotask's management commands."""


def positive_int(value):
    """Parse a command-line integer of at least 1 (argparse ``type=``)."""
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number
