"""Announcing expiries: ``key.expiring`` 7 days and 1 day ahead, ``key.expired`` once it passed.

Run by the fleet's one webhook sender about once a minute. Each announcement carries a dedupe
string naming the key and the expiry it is about, so it is written once, and a key whose expiry
moves gets new announcements for the new date.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.keys.models import ApiKey, KeyStatus
from akener.keys.service import emit_key_event

WARNINGS = (("7d", timedelta(days=7)), ("1d", timedelta(days=1)))
# A key that expired longer ago than this when akener first looks is not announced (an upgrade
# must not flood receivers with old news).
EXPIRED_LOOKBACK = timedelta(days=1)


async def announce_expiries(session: AsyncSession, now: datetime) -> None:
    """Write the expiry events due at ``now`` that were not written yet."""
    horizon = now + WARNINGS[0][1]
    keys = await session.scalars(
        select(ApiKey).where(
            ApiKey.status == KeyStatus.ACTIVE.value,
            ApiKey.expires_at.is_not(None),
            ApiKey.expires_at > now - EXPIRED_LOOKBACK,
            ApiKey.expires_at <= horizon,
        )
    )
    for key in keys.all():
        expires_at = key.expires_at
        assert expires_at is not None
        stamp = int(expires_at.timestamp())
        if expires_at <= now:
            await emit_key_event(
                session,
                "key.expired",
                key,
                "akener",
                dedupe=f"key.expired:{key.id}:{stamp}",
                now=now,
            )
            continue
        label = next(name for name, ahead in reversed(WARNINGS) if expires_at - now <= ahead)
        await emit_key_event(
            session,
            "key.expiring",
            key,
            "akener",
            {"expires_in": label},
            dedupe=f"key.expiring:{label}:{key.id}:{stamp}",
            now=now,
        )
