"""Reading the dashboard's expiry and grace-period choices, and wording times relative to now.

Pure functions: the clock is always passed in (``runtime.clock()``), so tests can travel in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from akener.durations import DurationError, parse_duration
from akener.errors import InvalidInput
from akener.keys.models import ApiKey

# The create form's presets; "custom" reads the date input beside the select.
EXPIRY_CHOICES: tuple[tuple[str, str], ...] = (
    ("never", "Never"),
    ("7d", "In 7 days"),
    ("30d", "In 30 days"),
    ("90d", "In 90 days"),
    ("custom", "On a date…"),
)
EXPIRING_WINDOW = timedelta(days=7)  # what the "keys expire soon" notice looks ahead


def expiry_from_form(choice: str, custom: str, now: datetime) -> datetime | None:
    """The ``expires_at`` an expiry choice means; None for "never".

    A custom date means the key stops working at 00:00 UTC on that day, so it must be after today.
    """
    if choice in ("", "never"):
        return None
    if choice != "custom":
        # Only the offered presets, read by the one duration parser (akener.durations).
        if choice not in {value for value, _ in EXPIRY_CHOICES}:
            raise InvalidInput("Choose one of the expiry options.", field="expires_in")
        try:
            return now + parse_duration(choice, "expiry")
        except DurationError as exc:  # pragma: no cover - the presets are valid durations
            raise InvalidInput(str(exc), field="expires_in") from None
    if not custom.strip():
        raise InvalidInput(
            "Pick the expiry date, or choose another expiry option.", field="expires_on"
        )
    try:
        day = date.fromisoformat(custom.strip())
    except ValueError:
        raise InvalidInput(
            "The expiry date must be a date such as 2030-12-31.", field="expires_on"
        ) from None
    when = datetime.combine(day, time(0), tzinfo=UTC)
    if when <= now:
        raise InvalidInput(
            f"The expiry date must be in the future (after {now.date().isoformat()}, UTC).",
            field="expires_on",
        )
    return when


@dataclass(frozen=True, slots=True)
class GraceChoice:
    """One option of the rotate form's grace period select."""

    seconds: int
    label: str
    allowed: bool  # False when the old secret would outlive the key's expiry


GRACE_CHOICES: tuple[tuple[int, str], ...] = (
    (0, "None: the old secret stops working immediately"),
    (3600, "1 hour"),
    (24 * 3600, "24 hours"),
    (7 * 24 * 3600, "7 days"),
)


def grace_choices(key: ApiKey, now: datetime) -> list[GraceChoice]:
    """The grace options, each marked allowed or not for this key (never past its expiry)."""
    return [
        GraceChoice(
            seconds,
            label,
            key.expires_at is None or now + timedelta(seconds=seconds) <= key.expires_at,
        )
        for seconds, label in GRACE_CHOICES
    ]


def grace_from_form(value: str) -> int:
    """The grace period in seconds from the form; only the offered choices are accepted."""
    if value.isdigit() and int(value) in {seconds for seconds, _ in GRACE_CHOICES}:
        return int(value)
    raise InvalidInput("Choose one of the grace periods offered.", field="grace_period_seconds")


_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


def relative(value: datetime, now: datetime) -> str:
    """``value`` said relative to ``now``: "in 3 days", "2 hours ago", "in 5 minutes"."""
    delta = value - now
    future = delta.total_seconds() >= 0
    seconds = abs(delta.total_seconds())
    sizes = [(size, unit) for size, unit in _UNITS if seconds >= size]
    if not sizes:
        return "in less than a minute" if future else "less than a minute ago"
    size, unit = sizes[0]
    count = int(seconds // size)
    words = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {words}" if future else f"{words} ago"


def key_state(key: ApiKey, now: datetime) -> str:
    """What the dashboard calls the key's state: "Active", "Inactive" or "Expired"."""
    if key.is_expired(now):
        return "Expired"
    return "Active" if key.is_active else "Inactive"


def expires_soon(key: ApiKey, now: datetime) -> bool:
    """True for an active key whose expiry falls within the notice's window."""
    return (
        key.is_active
        and key.expires_at is not None
        and now <= key.expires_at < now + EXPIRING_WINDOW
    )
