"""Rate-limit windows shared by every process of a fleet, counted in Redis (``AKENER_REDIS_URL``).

Same windows as on one process (fixed, aligned to the clock), but the clock is Redis's
(``TIME`` inside the script), so every host agrees on where a window starts. Counting:

* A limit below ``EXACT_BELOW`` pays one Redis round trip per request (``INCRBY 1``): exact.
* A larger limit is **leased**: a process takes ``LEASE_FRACTION`` of the limit at once
  (``INCRBY size``, capped by what is left) and spends it locally, synchronously. Nothing is
  ever admitted beyond the limit; what a process leased but did not spend when the window ends
  is lost, so with P busy processes a window admits at least ``limit - P * lease`` (4 % of the
  limit for 4 processes) while demand lasts (docs/limits.md).

A window that Redis says is full is remembered locally until it ends: a flood costs no round
trips. Redis failing raises StoreError; after a failure Redis is not asked again for
``RETRY_AFTER_ERROR`` seconds, then it is, so recovery needs no restart.
"""

from __future__ import annotations

import math
import time
from typing import Any

from akener.verify.limiter import Rule, WindowState

EXACT_BELOW = 1_000
LEASE_FRACTION = 0.01
RETRY_AFTER_ERROR = 1.0
MAX_SLOTS = 200_000

# KEYS[1]: key prefix; ARGV: size, limit, period. Returns {granted, total, ms to window end}.
_LEASE = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period_ms = tonumber(ARGV[3]) * 1000
local index = math.floor(now_ms / period_ms)
local key = KEYS[1] .. ':' .. index
local size = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local reset_ms = (index + 1) * period_ms - now_ms
local total = tonumber(redis.call('GET', key) or '0')
if total >= limit then return {0, total, reset_ms} end
local granted = math.min(size, limit - total)
total = redis.call('INCRBY', key, granted)
if total == granted then redis.call('PEXPIRE', key, reset_ms + 1000) end
return {granted, total, reset_ms}
"""


class StoreError(Exception):
    """Redis could not be asked (down, timed out, or recently failed)."""


class _Slot:
    __slots__ = ("ends", "limit_seen", "tokens")

    def __init__(self, tokens: int, ends: float, limit_seen: int) -> None:
        self.tokens = tokens  # leased, not yet spent
        self.ends = ends  # local monotonic instant the Redis window ends
        self.limit_seen = limit_seen  # what Redis had counted in all after the last lease


class SharedWindows:
    """Windows counted in Redis, leased in batches for large limits."""

    def __init__(self, client: Any, *, prefix: str = "akener:w") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_LEASE)
        self._slots: dict[tuple[str, str, int], _Slot] = {}
        self._down_until = 0.0
        self.round_trips = 0  # Redis calls made (tests and the benchmark count them)

    @classmethod
    def from_url(cls, url: str) -> SharedWindows:
        """A client for ``url`` with short timeouts: the hot path must not hang on Redis."""
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client)

    async def close(self) -> None:
        """Release the connections."""
        await self.client.aclose()

    async def _lease(self, rule: Rule, size: int) -> tuple[int, int, float]:
        if time.monotonic() < self._down_until:
            raise StoreError("Redis failed a moment ago")
        key = f"{self.prefix}:{rule.subject}:{rule.window.name}:{rule.window.period}"
        self.round_trips += 1
        try:
            granted, total, reset_ms = await self._script(
                keys=[key], args=[size, rule.window.limit, rule.window.period]
            )
        except Exception as exc:  # redis.exceptions.* and OSError: all mean "cannot count"
            self._down_until = time.monotonic() + RETRY_AFTER_ERROR
            raise StoreError(str(exc) or type(exc).__name__) from exc
        self._down_until = 0.0
        return int(granted), int(total), int(reset_ms) / 1000

    async def take(self, rules: tuple[Rule, ...]) -> tuple[int | None, list[WindowState]]:
        """Count one request in every window if all have room (None and the states), else
        count nothing and return the seconds until all have room again."""
        taken: list[_Slot] = []
        states: list[WindowState] = []
        wait: int | None = None
        for rule in rules:
            now = time.monotonic()
            slot_key = (rule.subject, rule.window.name, rule.window.period)
            slot = self._slots.get(slot_key)
            if slot is None or slot.ends <= now or slot.tokens <= 0:
                if slot is not None and slot.ends > now and slot.limit_seen >= rule.window.limit:
                    pass  # known full until it ends: no round trip
                else:
                    limit = rule.window.limit
                    size = 1 if limit < EXACT_BELOW else max(1, int(limit * LEASE_FRACTION))
                    try:
                        granted, total, reset = await self._lease(rule, size)
                    except StoreError:
                        self._give(taken)
                        raise
                    now = time.monotonic()
                    if slot is not None and slot.ends > now:
                        slot.tokens += granted
                        slot.limit_seen = total
                    else:
                        slot = _Slot(granted, now + reset, total)
                        if len(self._slots) >= MAX_SLOTS:
                            self._prune(now)
                        self._slots[slot_key] = slot
            reset_s = max(1, math.ceil(slot.ends - now))
            remaining = slot.tokens + max(0, rule.window.limit - slot.limit_seen)
            if slot.tokens <= 0:
                wait = reset_s if wait is None else max(wait, reset_s)
                states.append(WindowState(rule.window.name, rule.window.limit,
                                          rule.window.period, 0, reset_s))  # fmt: skip
                continue
            slot.tokens -= 1
            taken.append(slot)
            states.append(
                WindowState(
                    rule.window.name, rule.window.limit, rule.window.period, remaining - 1, reset_s
                )
            )
        if wait is not None:
            self._give(taken)
        return wait, states

    def give_back(self, rules: tuple[Rule, ...]) -> None:
        """Return one token to each window (a request refused after ``take``, e.g. credits)."""
        now = time.monotonic()
        for rule in rules:
            slot = self._slots.get((rule.subject, rule.window.name, rule.window.period))
            if slot is not None and slot.ends > now:
                slot.tokens += 1

    @staticmethod
    def _give(taken: list[_Slot]) -> None:
        for slot in taken:
            slot.tokens += 1

    def _prune(self, now: float) -> None:
        for key in [k for k, s in self._slots.items() if s.ends <= now]:
            del self._slots[key]
        while len(self._slots) >= MAX_SLOTS:
            del self._slots[next(iter(self._slots))]
