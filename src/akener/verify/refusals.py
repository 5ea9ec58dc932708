"""Refused keys that keep being presented: ``key.refused`` audit rows and webhook events;
keys that hit their limits: ``key.rate_limited`` and ``key.credits_exhausted`` webhook events.

A deactivated, expired or leaked key still arriving is the signal an investigation needs. The
hot path only notes the key id and client address in memory (once per key per hour per
process); a background task writes them. Each write carries a dedupe string naming the key and
the hour, so the fleet records at most one ``key.refused`` per key per hour.

Limit events work the same way: the hot path notes a refused request once per key per window
(rate limits) or refill period (credits) per process, and the dedupe string (key, window and
window number; key and refill period) makes the fleet write at most one event for it. A flush
that fails keeps what it took for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.audit.service import record_event
from akener.db.engine import begin_write
from akener.keys.models import ApiKey
from akener.keys.service import emit_key_event

log = logging.getLogger("akener.verify")
HOUR = 3600
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused key seen at ``at`` (POSIX seconds) from ``client``."""

    key_id: str
    reason: str
    client: str | None
    at: float


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A key refused by its limits: one ``event`` per ``dedupe`` string, fleet-wide."""

    key_id: str
    event: str  # key.rate_limited or key.credits_exhausted
    dedupe: str
    data: dict[str, Any]
    at: float


class RefusalRecorder:
    """Collects refusals in memory; ``flush`` writes them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.pending: list[Refusal] = []
        self.noted: dict[str, int] = {}  # key id -> hour last noted
        self.hits: list[LimitHit] = []
        self.hit: dict[tuple[str, str], str] = {}  # (key id, event) -> dedupe last noted

    def limited(
        self, key_id: str, event: str, dedupe: str, data: dict[str, Any], at: float
    ) -> None:
        """Remember a limit refusal unless this window or period was noted already (a dict
        lookup when so)."""
        slot = (key_id, event)
        if self.hit.get(slot) == dedupe or len(self.hits) >= MAX_PENDING:
            return
        if len(self.hit) > MAX_PENDING:
            self.hit.clear()
        self.hit[slot] = dedupe
        self.hits.append(LimitHit(key_id, event, dedupe, data, at))

    def note(self, key_id: str, reason: str, client: str | None, at: float) -> None:
        """Remember a refusal unless this key was noted this hour (a dict lookup when so)."""
        hour = int(at // HOUR)
        if self.noted.get(key_id) == hour or len(self.pending) >= MAX_PENDING:
            return
        if len(self.noted) > MAX_PENDING:
            self.noted.clear()
        self.noted[key_id] = hour
        self.pending.append(Refusal(key_id, reason, client, at))

    async def flush(self) -> int:
        """Write what was noted; returns how many were new to the fleet. On failure what was
        taken is kept (up to ``MAX_PENDING`` of each kind) and the error raised."""
        batch, self.pending = self.pending, []
        hits, self.hits = self.hits, []
        written = 0
        if not batch and not hits:
            return 0
        try:
            async with self.sessionmaker() as session:
                await begin_write(session)
                for refusal in batch:
                    written += await _write(session, refusal)
                for hit in hits:
                    written += await _write_hit(session, hit)
                await session.commit()
        except BaseException:
            self.pending = (batch + self.pending)[:MAX_PENDING]
            self.hits = (hits + self.hits)[:MAX_PENDING]
            raise
        return written

    async def run(self, every: float, clock: Callable[[], float]) -> None:
        """Flush every ``every`` seconds until cancelled."""
        del clock
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await self.flush()


async def _write(session: AsyncSession, refusal: Refusal) -> int:
    key = await session.get(ApiKey, refusal.key_id)
    if key is None:
        return 0
    when = datetime.fromtimestamp(refusal.at, UTC)
    event = await emit_key_event(
        session,
        "key.refused",
        key,
        "akener",
        {"reason": refusal.reason, "client": refusal.client},
        dedupe=f"key.refused:{key.id}:{int(refusal.at // HOUR)}",
        now=when,
    )
    if event is None:
        return 0
    await record_event(
        session,
        "akener",
        "key.refused",
        target_type="key",
        target_id=key.id,
        target_name=key.name,
        changes={"reason": {"before": None, "after": refusal.reason}},
        client=refusal.client,
    )
    return 1


async def _write_hit(session: AsyncSession, hit: LimitHit) -> int:
    key = await session.get(ApiKey, hit.key_id)
    if key is None:
        return 0
    when = datetime.fromtimestamp(hit.at, UTC)
    event = await emit_key_event(
        session, hit.event, key, "akener", hit.data, dedupe=hit.dedupe, now=when
    )
    return 0 if event is None else 1
