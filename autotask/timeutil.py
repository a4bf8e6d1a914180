"""Time conversions between Python, the database and ISO 8601 text; one home for all of them.

Datetimes cross three borders in autotask: the ORM and raw SQL (which skips
Django's converters), ``USE_TZ`` on or off, and ISO 8601 text in stored JSON
(a row's options and history).  Each helper names the border it crosses.
"""

import datetime as _datetime
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def aware_utc(value):
    """A database datetime as an aware UTC datetime (USE_TZ on or off)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value.astimezone(UTC)


def stored(value):
    """An aware datetime as the database stores it under the current USE_TZ."""
    if settings.USE_TZ:
        return value
    return timezone.make_naive(value, timezone.get_default_timezone())


def db_datetime(value):
    """``run_after`` as the task table stores it under the current USE_TZ."""
    if not settings.USE_TZ and timezone.is_aware(value):
        return timezone.make_naive(value)
    return value


def parse_iso(text):
    """An ISO 8601 text as a datetime (None for empty text)."""
    return datetime.fromisoformat(text) if text else None


def from_iso(text):
    """An ISO 8601 text of a row's history as the ORM would return it under USE_TZ."""
    value = datetime.fromisoformat(text)
    if not settings.USE_TZ and timezone.is_aware(value):
        value = timezone.make_naive(value)
    return value


def claimed_datetime(value):
    """A datetime column of a claimed row, as the ORM would return it.

    Claims read rows with raw SQL, which skips Django's converters: SQLite
    gives naive datetimes (or text) that are in UTC when USE_TZ is on.
    """
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def iso_or_value(value):
    """A datetime as ISO 8601 text; anything else unchanged (for JSON output)."""
    return value.isoformat() if isinstance(value, datetime) else value


def json_iso(value):
    """``json.dumps``'s ``default``: dates and datetimes as ISO 8601, anything else refused."""
    if isinstance(value, _datetime.date):
        # A naive datetime (USE_TZ = False) is read in the session's time zone,
        # as the driver's own adaptation of it would be.
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in a JSON row")
