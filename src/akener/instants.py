"""Dates, times and numbers typed by people: parsed once, at every edge, the same way.

Python's datetime covers years 1 to 9999 only; an instant such as ``9999-12-31T23:59:59-23:59``
parses but cannot be converted to UTC (its UTC year is 10000), and a huge or non-ASCII number
(``str.isdigit`` accepts ``"١٢٣"``) overflows the arithmetic after it. Everything here turns
such input into ``InvalidInput`` before it reaches arithmetic or a database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from akener.errors import InvalidInput

# Keeps every later "+ grace period" or "+ 90 days" inside the calendar.
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
RANGE_MESSAGE = "date is outside the supported range (years 1 to 8999, in UTC)"


def in_range_utc(when: datetime) -> datetime:
    """``when`` (aware) in UTC; ValueError when it cannot be, or lies past the year 8999."""
    try:
        utc = when.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(RANGE_MESSAGE) from None
    if utc >= LATEST:
        raise ValueError(RANGE_MESSAGE)
    return utc


def parse_instant(value: str, field: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when no zone is given), in UTC; InvalidInput otherwise."""
    try:
        when = datetime.fromisoformat(value.strip())
        return in_range_utc(when.replace(tzinfo=UTC) if when.tzinfo is None else when)
    except ValueError as exc:
        hint = "e.g. 2026-11-29 or 2026-11-29T13:45:00Z"
        if str(exc) == RANGE_MESSAGE:
            raise InvalidInput(f"{field}: {exc}", field=field) from None
        raise InvalidInput(
            f"{field} must be an ISO 8601 date or date-time, {hint}", field=field
        ) from None


def ascii_int(value: str, *, max_digits: int = 12) -> int | None:
    """The number ``value`` spells in ASCII digits (at most ``max_digits``), else None."""
    if not value.isascii() or not value.isdigit() or len(value) > max_digits:
        return None
    return int(value)


def has_control(value: str) -> bool:
    """True when ``value`` holds a control character (NUL included, which PostgreSQL refuses)."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value)
