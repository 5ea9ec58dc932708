"""Spending credits: one database transaction per request of a key that has credits.

The database is the authority (docs/limits.md): the row is locked (PostgreSQL ``FOR UPDATE``,
SQLite's write lock), a due refill is applied, and ``cost`` is taken only if that many remain.
However many processes or hosts serve, credits are never overspent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.db.engine import begin_write
from akener.keys import limits as lim
from akener.keys.models import ApiKey, Owner


@dataclass(frozen=True, slots=True)
class Spent:
    """The result of one spend."""

    ok: bool
    remaining: int | None  # what is left on the key's credits (else the owner's); None: n/a
    refill_at: float | None  # POSIX seconds of the next refill of the credits that refused
    # (or, when admitted, of the credits shown); None when they never refill
    whose: str | None = None  # on a refusal: "key" or "owner", the credits that ran out


async def _take(
    session: AsyncSession, row: ApiKey | Owner | None, cost: int, now: datetime
) -> tuple[bool, int | None, float | None]:
    if row is None or row.credits_remaining is None:
        return True, None, None  # unlimited since the cache entry was made
    interval = row.credits_refill_interval
    refill: lim.Interval | None = (
        "daily" if interval == "daily" else "monthly" if interval == "monthly" else None
    )
    remaining, refilled_at = lim.refilled(
        row.credits_remaining, row.credits_refill_amount, refill, row.credits_refilled_at, now
    )
    refill_at = None if refill is None else lim.next_boundary(refill, now).timestamp()
    if remaining < cost:
        return False, remaining, refill_at
    row.credits_remaining = remaining - cost
    row.credits_refilled_at = refilled_at
    return True, row.credits_remaining, refill_at


async def spend(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    key_id: str,
    owner_id: str | None,
    key_credits: bool,
    owner_credits: bool,
    cost: int,
    now: float,
) -> Spent:
    """Take ``cost`` credits from the key and/or its owner, all or nothing."""
    when = datetime.fromtimestamp(now, UTC)
    async with sessionmaker() as session:
        await begin_write(session)
        shown: tuple[int | None, float | None] = (None, None)
        if owner_credits and owner_id is not None:
            by_owner = select(Owner).where(Owner.owner_id == owner_id).with_for_update()
            owner = (await session.execute(by_owner)).scalars().first()
            ok, remaining, refill_at = await _take(session, owner, cost, when)
            if not ok:
                await session.rollback()
                return Spent(False, remaining, refill_at, "owner")
            shown = (remaining, refill_at)
        if key_credits:
            by_id = select(ApiKey).where(ApiKey.id == key_id).with_for_update()
            key = (await session.execute(by_id)).scalars().first()
            ok, remaining, refill_at = await _take(session, key, cost, when)
            if not ok:
                await session.rollback()
                return Spent(False, remaining, refill_at, "key")
            if remaining is not None:
                shown = (remaining, refill_at)
        await session.commit()
    return Spent(True, *shown)
