"""Per-request limits on one process: address allowlist, rate-limit windows, credits.

Windows are **fixed windows aligned to the epoch**: a window of ``period`` seconds is the span
``[k * period, (k + 1) * period)`` of POSIX time, and admits exactly ``limit`` requests in it.
``Retry-After`` is then exact: the seconds (rounded up) until the window that refused ends.
A fixed window may admit up to ``2 * limit`` across the boundary of two windows; that is the
price of exact counts and exact reset times (docs/limits.md).

Counters live in a bounded LRU map keyed by (subject, window name, period), where the subject is
the key id or the owner id: they survive cache invalidations (changing a key does not reset
its counts) and memory stays bounded (``max_counters``; an evicted counter starts again at 0).

Credits go through the database on every request of a key that has them (akener.verify.credits):
the database is the authority, so they are never overspent, whatever the number of processes.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from akener.keys.limits import Network, Window

DEFAULT_MAX_COUNTERS = 200_000

RATE_LIMITED = "RATE_LIMITED"
USAGE_EXCEEDED = "USAGE_EXCEEDED"
IP_NOT_ALLOWED = "IP_NOT_ALLOWED"


@dataclass(frozen=True, slots=True)
class Rule:
    """One window applied to one subject (``k:<key id>`` or ``o:<owner id>``)."""

    subject: str
    window: Window


@dataclass(frozen=True, slots=True)
class EntryLimits:
    """What the per-request checks need about a key's limits (held by its cache entry)."""

    rules: tuple[Rule, ...] = ()
    allowed: tuple[Network, ...] = ()
    owner_id: str | None = None
    key_credits: bool = False  # the key has its own credits
    owner_credits: bool = False  # its owner has shared credits

    # The RateLimit-Policy field value, rendered once per cache entry (render_policy).
    policy: bytes = b""

    @property
    def credits(self) -> bool:
        """True when a request must spend credits in the database."""
        return self.key_credits or self.owner_credits


def render_policy(rules: tuple[Rule, ...]) -> bytes:
    """``RateLimit-Policy`` as in draft-ietf-httpapi-ratelimit-headers-11: one item per window,
    named by the window, with quota ``q`` and window ``w`` in seconds."""
    return ", ".join(
        f'"{r.window.name}";q={r.window.limit};w={r.window.period}' for r in rules
    ).encode("ascii")


@dataclass(slots=True)
class WindowState:
    """One window after a decision, for the RateLimit headers and the verify API."""

    name: str
    limit: int
    period: int
    remaining: int
    reset: int  # seconds until the window ends (rounded up)


@dataclass(slots=True)
class Admission:
    """The outcome of the limits for one request."""

    code: str | None = None  # None: admitted; else RATE_LIMITED, USAGE_EXCEEDED, IP_NOT_ALLOWED
    retry_after: int | None = None
    windows: list[WindowState] = field(default_factory=list)
    credits_remaining: int | None = None
    refill_at: float | None = None  # POSIX seconds of the next refill of the credits shown


def address_allowed(allowed: tuple[Network, ...], client: str | None) -> bool:
    """True when ``allowed`` is empty or holds ``client``'s address."""
    if not allowed:
        return True
    if client is None:
        return False
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in allowed)


class WindowCounters:
    """Fixed-window counts in a bounded LRU map."""

    def __init__(self, max_counters: int = DEFAULT_MAX_COUNTERS) -> None:
        self.max_counters = max_counters
        self._counts: OrderedDict[tuple[str, str, int], list[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    def _slot(self, rule: Rule, index: int) -> list[int]:
        key = (rule.subject, rule.window.name, rule.window.period)
        slot = self._counts.get(key)
        if slot is None:
            slot = self._counts[key] = [index, 0]
            if len(self._counts) > self.max_counters:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
            if slot[0] != index:
                slot[0], slot[1] = index, 0
        return slot

    def take(self, rules: tuple[Rule, ...], now: float) -> tuple[int | None, list[WindowState]]:
        """Count one request in every window if all have room (returns None and the states);
        otherwise count nothing and return the seconds until all have room again. Synchronous:
        no other request runs between the check and the count, so a window admits exactly its
        limit."""
        wait: int | None = None
        states = []
        slots = []
        for rule in rules:
            w = rule.window
            index = int(now // w.period)
            slot = self._slot(rule, index)
            reset = max(1, math.ceil((index + 1) * w.period - now))
            if slot[1] >= w.limit:
                wait = reset if wait is None else max(wait, reset)
            slots.append(slot)
            states.append(WindowState(w.name, w.limit, w.period, max(0, w.limit - slot[1]), reset))
        if wait is None:
            for slot, state in zip(slots, states, strict=True):
                slot[1] += 1
                state.remaining -= 1
        return wait, states

    def give_back(self, rules: tuple[Rule, ...], now: float) -> None:
        """Undo a ``take`` whose request was refused afterwards (e.g. out of credits)."""
        for rule in rules:
            key = (rule.subject, rule.window.name, rule.window.period)
            slot = self._counts.get(key)
            if slot is not None and slot[0] == int(now // rule.window.period) and slot[1] > 0:
                slot[1] -= 1
