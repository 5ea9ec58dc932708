"""Limits on a key or an owner: rate-limit windows, credits, address allowlist, owner id.

Pure (no database, no settings): the shapes the services store, the refill calendar and the
comparisons the "changing a key is granting it" rule needs (akener.keys.grants).

Comparisons are conservative. A window set B is *at least as tight* as A when every window of
A is matched by a window of B with a limit no higher and a period no shorter (100 per 60 s is
matched by 10 per 3600 s, not by 50 per 30 s). Credits B are at least as tight as A when A is
unlimited, or B has no more remaining and refills no more, no more often. An allowlist B is at
least as tight as A when A is empty (any address), or every block of B lies inside a block of A.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from akener.errors import InvalidInput

MAX_WINDOWS = 5
MAX_LIMIT = 10**12
MAX_PERIOD = 86_400
MAX_CREDITS = 10**15  # fits a signed 64-bit column with room for a refill on top
MAX_ALLOWED_IPS = 100
Interval = Literal["daily", "monthly"]
OWNER_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
WINDOW_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests per ``period`` seconds, under ``name``."""

    name: str
    limit: int
    period: int

    def as_json(self) -> dict[str, object]:
        """The stored and API shape."""
        return {"name": self.name, "limit": self.limit, "period_seconds": self.period}


@dataclass(frozen=True, slots=True)
class Credits:
    """What is left to spend, and how it comes back (no refill: it never does)."""

    remaining: int
    refill_amount: int | None = None
    refill_interval: Interval | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything that restricts a key (or an owner; owners have no allowlist or owner id)."""

    windows: tuple[Window, ...] = ()
    credits: Credits | None = None
    allowed: tuple[Network, ...] = ()
    owner_id: str | None = None

    @property
    def limited(self) -> bool:
        """True when anything here restricts its holder."""
        return bool(self.windows or self.credits or self.allowed or self.owner_id)


def windows_from_json(values: Iterable[dict[str, object]] | None) -> tuple[Window, ...]:
    """Windows from their stored JSON."""
    return tuple(
        Window(str(v["name"]), int(str(v["limit"])), int(str(v["period_seconds"])))
        for v in values or ()
    )


def networks(values: Iterable[str] | None) -> tuple[Network, ...]:
    """Parsed allowlist blocks (already validated when stored)."""
    return tuple(ipaddress.ip_network(v) for v in values or ())


def parse_network(text: str) -> Network:
    """One CIDR block (a bare address is a /32 or /128); ValueError with a clear message."""
    if not isinstance(text, str) or len(text) > 64 or not text.isascii() or not text.isprintable():
        raise ValueError("an allowed address must be a CIDR block such as 10.0.0.0/8")
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{text[:64]!r} is not a CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32);"
            " the address part must have no bits set past the prefix"
        ) from exc


def check_windows(windows: Sequence[Window]) -> None:
    """InvalidInput unless: at most five windows, distinct names, limits and periods in range."""
    if len(windows) > MAX_WINDOWS:
        raise InvalidInput(f"at most {MAX_WINDOWS} rate-limit windows", field="rate_limits")
    if len({w.name for w in windows}) != len(windows):
        raise InvalidInput("each rate-limit window needs its own name", field="rate_limits")
    for w in windows:
        if not WINDOW_NAME_RE.fullmatch(w.name):
            raise InvalidInput(
                "a window name must be 1 to 64 letters, digits, '_', '.' or '-'",
                field="rate_limits",
            )
        if not 1 <= w.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="rate_limits")
        if not 1 <= w.period <= MAX_PERIOD:
            raise InvalidInput(
                f"period_seconds must be between 1 and {MAX_PERIOD}", field="rate_limits"
            )


def check_credits(credits: Credits) -> None:
    """InvalidInput unless remaining and refill are in range."""
    if not 0 <= credits.remaining <= MAX_CREDITS:
        raise InvalidInput(f"remaining must be between 0 and {MAX_CREDITS}", field="credits")
    if (credits.refill_amount is None) != (credits.refill_interval is None):
        raise InvalidInput("a refill needs an amount and an interval", field="credits")
    if credits.refill_amount is not None and not 1 <= credits.refill_amount <= MAX_CREDITS:
        raise InvalidInput(f"refill amount must be between 1 and {MAX_CREDITS}", field="credits")
    if credits.refill_interval not in (None, "daily", "monthly"):
        raise InvalidInput("refill interval must be daily or monthly", field="credits")


class CreditColumns(Protocol):
    """A row holding credit columns (a key or an owner)."""

    credits_remaining: int | None
    credits_refill_amount: int | None
    credits_refill_interval: str | None
    credits_refilled_at: datetime | None


def store_credits(row: CreditColumns, credits: Credits | None, now: datetime) -> None:
    """Write ``credits`` (None: unlimited) into a row; the refill clock starts at ``now``."""
    row.credits_remaining = None if credits is None else credits.remaining
    row.credits_refill_amount = None if credits is None else credits.refill_amount
    interval = None if credits is None else credits.refill_interval
    row.credits_refill_interval = interval
    row.credits_refilled_at = None if interval is None else last_boundary(interval, now)


# --- the refill calendar (UTC) -----------------------------------------------------------------


def last_boundary(interval: Interval, now: datetime) -> datetime:
    """The latest refill instant at or before ``now``: 00:00 UTC, or the 1st at 00:00 UTC."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if interval == "daily" else day.replace(day=1)


def next_boundary(interval: Interval, now: datetime) -> datetime:
    """The first refill instant strictly after ``now``."""
    start = last_boundary(interval, now)
    if interval == "daily":
        return start + timedelta(days=1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def refilled(
    remaining: int,
    amount: int | None,
    interval: Interval | None,
    refilled_at: datetime | None,
    now: datetime,
) -> tuple[int, datetime | None]:
    """``remaining`` and the last refill instant as of ``now``: a refill due since
    ``refilled_at`` sets ``remaining`` to ``amount`` (it does not add to it)."""
    if amount is None or interval is None:
        return remaining, refilled_at
    due = last_boundary(interval, now)
    if refilled_at is None or refilled_at < due:
        return amount, due
    return remaining, refilled_at


# --- comparisons for the grant rule ------------------------------------------------------------


def windows_loosened(old: Sequence[Window], new: Sequence[Window]) -> bool:
    """True when ``new`` lets through something ``old`` would stop."""
    return any(not any(n.limit <= o.limit and n.period >= o.period for n in new) for o in old)


def credits_added(old: Credits | None, new: Credits | None) -> bool:
    """True when ``new`` lets its holder spend more than ``old``."""
    if old is None:
        return False
    if new is None or new.remaining > old.remaining:
        return True
    if new.refill_amount is None:
        return False
    if old.refill_amount is None or new.refill_amount > old.refill_amount:
        return True
    return new.refill_interval == "daily" and old.refill_interval == "monthly"


def allowlist_widened(old: Sequence[Network], new: Sequence[Network]) -> bool:
    """True when ``new`` admits an address ``old`` refuses (empty: any address)."""
    if not old:
        return False
    if not new:
        return True
    return any(
        not any(n.version == o.version and n.subnet_of(o) for o in old)  # type: ignore[arg-type]
        for n in new
    )


def loosened(old: Limits, new: Limits) -> list[str]:
    """What ``new`` gives that ``old`` does not, in words (empty: nothing)."""
    found = []
    if windows_loosened(old.windows, new.windows):
        found.append("raising or removing a key's rate limit")
    if credits_added(old.credits, new.credits):
        found.append("adding credits to a key")
    if allowlist_widened(old.allowed, new.allowed):
        found.append("widening a key's address allowlist")
    if old.owner_id != new.owner_id:
        found.append("moving a key to another owner")
    return found


def looser_than(bound: Limits, wanted: Limits) -> list[str]:
    """Where ``wanted`` is less limited than ``bound`` (a limited key's own limits)."""
    found = []
    if windows_loosened(bound.windows, wanted.windows):
        found.append("rate limits at least as tight as its own")
    if credits_added(bound.credits, wanted.credits):
        found.append("no more credits than it has")
    if allowlist_widened(bound.allowed, wanted.allowed):
        found.append("an address allowlist inside its own")
    if bound.owner_id is not None and wanted.owner_id != bound.owner_id:
        found.append(f"the owner id {bound.owner_id!r}")
    return found
