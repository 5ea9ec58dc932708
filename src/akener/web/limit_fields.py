"""Limit fields of dashboard forms (create form, key page): one window or address a line."""

from __future__ import annotations

import re

from akener.errors import InvalidInput
from akener.keys import limits as lim

_WINDOW_LINE = re.compile(r"\s*([A-Za-z0-9_.\-]{1,64})\s+(\d{1,13})\s*/\s*(\d{1,6})\s*s?\s*")


def parse_windows(value: str) -> list[lim.Window]:
    """One window a line: ``NAME LIMIT/SECONDS`` (``requests 100/60``)."""
    windows = []
    for line in filter(str.strip, value.splitlines()):
        match = _WINDOW_LINE.fullmatch(line)
        if not match:
            raise InvalidInput(
                f"Rate limits: write each as NAME LIMIT/SECONDS, e.g. 'requests 100/60' "
                f"(not {line.strip()[:40]!r}).",
                field="rate_limits",
            )
        windows.append(lim.Window(match[1], int(match[2]), int(match[3])))
    return windows


def parse_credits(remaining: str, amount: str, interval: str) -> lim.Credits | None:
    """Empty remaining: unlimited. A refill needs an amount and daily or monthly."""
    if not remaining.strip():
        return None
    if not remaining.strip().isdigit() or len(remaining.strip()) > 16:
        raise InvalidInput("Credits must be a whole number, or empty for unlimited.", "credits")
    if not amount.strip():
        return lim.Credits(int(remaining))
    if not amount.strip().isdigit() or len(amount.strip()) > 16:
        raise InvalidInput("The refill amount must be a whole number.", field="credits")
    if interval not in ("daily", "monthly"):
        raise InvalidInput("Choose a daily or monthly refill.", field="credits")
    return lim.Credits(int(remaining), int(amount), "daily" if interval == "daily" else "monthly")
