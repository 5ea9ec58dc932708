"""The one duration parser: ``4w``, ``90d``, ``12h``, ``30m``, ``45s``; ``0`` alone where allowed.

Pure (no settings, no database): the CLI, the API schemas, the dashboard and the settings all
call :func:`parse_duration`, so a duration means the same everywhere. A bare number other than
``0`` is refused: "90" could be seconds, minutes or days, and guessing is how keys end up
expiring in 90 seconds instead of 90 days.
"""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}
# No sign, no fraction, no spaces inside: one whole number and one unit letter.
_DURATION_RE = re.compile(r"([0-9]{1,9})([smhdw])")  # ASCII digits only
EXAMPLES = "such as 4w, 90d, 12h, 30m or 45s"
# Beyond any sensible expiry or retention, and far inside what ``timedelta`` can hold.
LONGEST = timedelta(days=100 * 365)


class DurationError(ValueError):
    """A text that is not an acceptable duration; the message says what is expected."""


def parse_duration(
    text: str,
    what: str = "duration",
    *,
    allow_zero: bool = False,
    minimum: timedelta | None = None,
    maximum: timedelta | None = None,
) -> timedelta:
    """``text`` as a duration; ``0`` only when ``allow_zero`` (it then means "none")."""
    value = text.strip().lower() if isinstance(text, str) else ""
    zero_hint = " (or 0 for none)" if allow_zero else ""
    if value == "0" and allow_zero:
        return timedelta(0)
    match = _DURATION_RE.fullmatch(value)
    if match is None:
        if not value:
            problem = "is empty"
        elif value.isascii() and value.isdigit():
            problem = f"needs a unit: {value!r} alone could mean seconds or days"
        else:
            problem = f"is not a duration: {text.strip()[:40]!r}"
        raise DurationError(f"{what} {problem}; give a duration {EXAMPLES}{zero_hint}")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > LONGEST.total_seconds():
        raise DurationError(f"{what} must be at most {describe(maximum or LONGEST)}")
    result = timedelta(seconds=seconds)
    if result == timedelta(0) and not allow_zero:
        raise DurationError(f"{what} must be longer than 0")
    low = minimum if minimum is not None else timedelta(0)
    if result < low:
        raise DurationError(f"{what} must be at least {describe(low)}")
    if maximum is not None and result > maximum:
        raise DurationError(f"{what} must be at most {describe(maximum)}")
    return result


def format_duration(value: timedelta) -> str:
    """The shortest exact text for ``value`` in the parser's units (``0`` for none)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    for unit in ("w", "d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def describe(value: timedelta) -> str:
    """``value`` in words for messages: "7 days", "1 hour", "90 seconds"."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m", "s"):
        if seconds % UNITS[unit] == 0:
            count = seconds // UNITS[unit]
            return f"{count} {UNIT_NAMES[unit]}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"  # pragma: no cover - "s" always divides
