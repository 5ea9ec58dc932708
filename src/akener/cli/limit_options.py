"""Parsing of the limit options of ``akener keys create`` and ``akener keys update``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from akener.cli.common import parse_duration
from akener.errors import InvalidInput

if TYPE_CHECKING:
    from akener.keys.limits import Credits, Window

_WINDOW_RE = re.compile(r"([^=]{1,64})=(\d{1,13})/(.{1,12})")
_REFILL_RE = re.compile(r"(\d{1,16})/(daily|monthly)")

OwnerOpt = Annotated[
    str | None,
    typer.Option("--owner-id", help="The owner id that groups this key, e.g. customer_42."),
]
WindowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rate-limit",
        help="A window NAME=LIMIT/PERIOD, e.g. requests=100/1m (up to 5; repeat for more).",
    ),
]
CreditsOpt = Annotated[
    int | None, typer.Option("--credits", help="Credits to spend: one per accepted request.")
]
RefillOpt = Annotated[
    str | None,
    typer.Option("--refill", help="With --credits: AMOUNT/daily or AMOUNT/monthly (00:00 UTC)."),
]
AllowIpOpt = Annotated[
    list[str] | None,
    typer.Option("--allow-ip", help="A CIDR block allowed to use the key; repeat for more."),
]


def parse_window(text: str) -> Window:
    """``NAME=LIMIT/PERIOD`` (PERIOD a duration such as 60s, 1m, 1h, 1d) as a Window."""
    from akener.keys.limits import MAX_PERIOD, Window

    match = _WINDOW_RE.fullmatch(text.strip())
    if not match:
        raise InvalidInput(
            f"--rate-limit {text[:80]!r}: use NAME=LIMIT/PERIOD, e.g. requests=100/1m",
            field="--rate-limit",
        )
    period = parse_duration(match[3], "--rate-limit period", maximum=timedelta(seconds=MAX_PERIOD))
    return Window(match[1], int(match[2]), int(period.total_seconds()))


def parse_credits(credits: int | None, refill: str | None) -> Credits | None:
    """``--credits`` and ``--refill`` as Credits (None when neither is given)."""
    from akener.keys.limits import Credits

    if credits is None:
        if refill is not None:
            raise InvalidInput("--refill needs --credits", field="--refill")
        return None
    if refill is None:
        return Credits(credits)
    match = _REFILL_RE.fullmatch(refill.strip().lower())
    if not match:
        raise InvalidInput(
            f"--refill {refill[:40]!r}: use AMOUNT/daily or AMOUNT/monthly", field="--refill"
        )
    return Credits(credits, int(match[1]), "daily" if match[2] == "daily" else "monthly")


def describe(row: object) -> str:
    """One line saying what limits a key has, for stderr."""
    parts = []
    owner = getattr(row, "owner_id", None)
    if owner:
        parts.append(f"owner {owner}")
    for w in getattr(row, "rate_limits", None) or []:
        parts.append(f"{w['name']} {w['limit']}/{w['period_seconds']}s")
    remaining = getattr(row, "credits_remaining", None)
    if remaining is not None:
        parts.append(f"{remaining} credits")
    allowed = getattr(row, "allowed_ips", None) or []
    if allowed:
        parts.append("from " + ", ".join(allowed))
    return "; ".join(parts) or "no limits"
