"""Writing events into the outbox, in the transaction of the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from akener.db.base import utcnow
from akener.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

# Every event a webhook can subscribe to (docs/events.md).
EVENT_TYPES: tuple[str, ...] = (
    "key.created",
    "key.updated",
    "key.activated",
    "key.deactivated",
    "key.rotated",
    "key.deleted",
    "key.leaked",
    "key.refused",
    "key.expiring",
    "key.expired",
    "key.rate_limited",
    "key.credits_exhausted",
)
# Receivers get at most this much JSON per event.
MAX_PAYLOAD_BYTES = 16 * 1024


async def emit_event(
    session: AsyncSession,
    event_type: str,
    *,
    key_id: str | None,
    data: dict[str, Any],
    dedupe: str | None = None,
    now: datetime | None = None,
) -> OutboxEvent | None:
    """Append an event and queue one delivery per subscribed endpoint, in the caller's
    transaction: the event exists if and only if the change commits.

    With ``dedupe``, an event already written under the same string is not written again
    (None is returned).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    now = now or utcnow()
    if dedupe is None:
        return await _append(session, event_type, key_id, data, None, now)
    found = await session.scalar(select(OutboxEvent.id).where(OutboxEvent.dedupe == dedupe))
    if found is not None:
        return None
    try:
        # Two processes may pass the check at once (PostgreSQL): the unique index on dedupe
        # lets one write it; the other's savepoint is rolled back, not its whole transaction.
        async with session.begin_nested():
            return await _append(session, event_type, key_id, data, dedupe, now)
    except IntegrityError:
        return None


async def _append(
    session: AsyncSession,
    event_type: str,
    key_id: str | None,
    data: dict[str, Any],
    dedupe: str | None,
    now: datetime,
) -> OutboxEvent:
    event = OutboxEvent(
        type=event_type,
        occurred_at=now,
        key_id=key_id,
        payload={"type": event_type, "timestamp": now.isoformat(), "data": data},
        dedupe=dedupe,
    )
    session.add(event)
    await session.flush()
    endpoints = (await session.scalars(select(WebhookEndpoint))).all()
    for endpoint in endpoints:
        if event_type in endpoint.events:
            session.add(
                WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now)
            )
    await session.flush()
    return event
