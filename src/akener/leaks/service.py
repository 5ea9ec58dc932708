"""Leaked keys: reported by GitHub, by a person, or found by ``akener scan``.

A reported key of this installation is deactivated (``AKENER_ON_LEAK=deactivate``, the default)
or only announced (``notify``); either way a ``key.leaked`` audit row records where it was
found and a ``key.leaked`` event goes to webhooks. A report repeated for the same key and
place changes nothing more (reports are replayed by relays and retried by GitHub).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import API_KEYS_READ, API_KEYS_WRITE, Principal
from akener.audit.service import record_event
from akener.db.base import utcnow
from akener.events.models import OutboxEvent
from akener.keys import tokens
from akener.keys.events import record_key_change
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository
from akener.keys.service import emit_key_event, lock_key

MAX_URL = 1000


@dataclass(frozen=True, slots=True)
class Found:
    """What a plaintext key is to this installation."""

    key: ApiKey | None
    status: str  # ACTIVE, INACTIVE, EXPIRED, ROTATED (an old secret), or UNKNOWN
    live: bool  # it would be accepted right now


async def look_up(session: AsyncSession, peppers: Peppers, plaintext: str, now: datetime) -> Found:
    """Find a plaintext key by its digest (never stored, never logged)."""
    if not tokens.is_well_formed(plaintext):
        return Found(None, "UNKNOWN", False)
    digests = peppers.candidates(plaintext)
    key = await KeyRepository(session).get_by_digests(digests)
    if key is None:
        return Found(None, "UNKNOWN", False)
    if key.digest not in digests:  # the secret a rotation replaced
        live = key.is_active and key.previous_secret_valid(now) and not key.is_expired(now)
        return Found(key, "ROTATED", live)
    if not key.is_active:
        return Found(key, "INACTIVE", False)
    if key.is_expired(now):
        return Found(key, "EXPIRED", False)
    return Found(key, "ACTIVE", True)


def _dedupe(key_id: str, url: str) -> str:
    return f"key.leaked:{key_id}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


async def record_leak(
    session: AsyncSession,
    key: ApiKey,
    *,
    actor: str,
    url: str,
    source: str,
    on_leak: str,
    client: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Act on a leak of ``key`` found at ``url``; False when this report was already handled."""
    # Printable text only: a report is data from outside (PostgreSQL also refuses NUL).
    url = "".join(ch for ch in url if ch.isprintable())[:MAX_URL]
    now = now or utcnow()
    deactivate = on_leak == "deactivate" and key.is_active
    event = await emit_key_event(
        session,
        "key.leaked",
        key,
        actor,
        {"url": url, "source": source, "deactivated": deactivate},
        dedupe=_dedupe(key.id, url),
        now=now,
    )
    if event is None:
        return False
    changes: dict[str, object] = {"found_at": {"before": None, "after": url}}
    changes["source"] = {"before": None, "after": source}
    if deactivate:
        key.status = KeyStatus.INACTIVE.value
        await session.flush()
        await record_key_change(session, key.id)
        changes["status"] = {"before": "ACTIVE", "after": "INACTIVE"}
        await emit_key_event(session, "key.deactivated", key, actor, {"reason": "leaked"}, now=now)
    await record_event(
        session,
        actor,
        "key.leaked",
        target_type="key",
        target_id=key.id,
        target_name=key.name,
        changes=changes,
        client=client,
    )
    return True


async def report_leak(
    session: AsyncSession,
    actor: Principal,
    key_id: str,
    *,
    url: str | None,
    on_leak: str,
    now: datetime | None = None,
) -> ApiKey:
    """A person (or a key about itself) reports ``key_id`` as leaked."""
    if not (actor.kind == "key" and actor.id == key_id):  # a key may report itself
        actor.require(API_KEYS_WRITE)
    key = await lock_key(session, key_id)
    await record_leak(
        session,
        key,
        actor=actor.actor,
        url=url or "reported by hand",
        source="manual",
        on_leak=on_leak,
        client=actor.client,
        now=now,
    )
    return key


async def last_refused(
    session: AsyncSession, actor: Principal, key_id: str, *, since: datetime
) -> OutboxEvent | None:
    """The newest ``key.refused`` event of ``key_id`` after ``since`` (the key is still in use)."""
    actor.require(API_KEYS_READ)
    return await session.scalar(
        select(OutboxEvent)
        .where(
            OutboxEvent.key_id == key_id,
            OutboxEvent.type == "key.refused",
            OutboxEvent.occurred_at >= since,
        )
        .order_by(OutboxEvent.id.desc())
        .limit(1)
    )
