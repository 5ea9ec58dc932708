"""Webhook endpoints and their deliveries: each operation checks the permission and audits."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import WEBHOOKS_READ, WEBHOOKS_WRITE, Principal
from akener.audit.service import diff, record_event
from akener.db.base import utcnow
from akener.errors import Conflict, InvalidInput, NotFound
from akener.events.addresses import check_url
from akener.events.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from akener.events.outbox import EVENT_TYPES
from akener.events.sealing import SecretBox, new_signing_secret

MAX_DELIVERY_PAGE = 100
MAX_OVERLAP = timedelta(days=7)
_ID_RE = re.compile(r"[0-9a-f]{32}")


def _check_events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidInput("events must name at least one event type", field="events")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}",
            field="events",
        )
    return sorted(set(events), key=EVENT_TYPES.index)


def _audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
    }


async def _audit(
    session: AsyncSession,
    actor: Principal,
    action: str,
    endpoint: WebhookEndpoint,
    changes: dict[str, Any],
) -> None:
    await record_event(
        session,
        actor,
        action,
        target_type="webhook",
        target_id=endpoint.id,
        target_name=endpoint.url[:200],
        changes=changes,
    )


async def create_endpoint(
    session: AsyncSession,
    actor: Principal,
    *,
    url: str,
    events: list[str],
    description: str,
    box: SecretBox,
    allow_private: bool,
    max_endpoints: int,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown this once only)."""
    actor.require(WEBHOOKS_WRITE)
    url = check_url(url, allow_private=allow_private)
    events = _check_events(events)
    count = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
    if (count or 0) >= max_endpoints:
        raise Conflict(
            f"there are already {count} webhook endpoints (AKENER_WEBHOOKS_MAX_ENDPOINTS);"
            " delete one first"
        )
    secret = new_signing_secret()
    sealed, version = box.seal(secret)
    endpoint = WebhookEndpoint(
        url=url,
        events=events,
        description=description,
        sealed_secret=sealed,
        secret_version=version,
        created_by=actor.actor,
    )
    session.add(endpoint)
    await session.flush()
    await _audit(session, actor, "webhook.created", endpoint, diff({}, _audited(endpoint)))
    return endpoint, secret


async def list_endpoints(session: AsyncSession, actor: Principal) -> list[WebhookEndpoint]:
    """Every endpoint, oldest first."""
    actor.require(WEBHOOKS_READ)
    rows = await session.scalars(
        select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(rows.all())


async def get_endpoint(
    session: AsyncSession, actor: Principal, endpoint_id: str
) -> WebhookEndpoint:
    """One endpoint by id."""
    actor.require(WEBHOOKS_READ)
    return await _load(session, endpoint_id)


async def _load(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    endpoint = None
    if _ID_RE.fullmatch(endpoint_id):
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("no webhook endpoint with that id")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    actor: Principal,
    endpoint_id: str,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    allow_private: bool,
) -> WebhookEndpoint:
    """Change an endpoint's address, events or description."""
    actor.require(WEBHOOKS_WRITE)
    endpoint = await _load(session, endpoint_id)
    before = _audited(endpoint)
    if url is not None:
        endpoint.url = check_url(url, allow_private=allow_private)
    if events is not None:
        endpoint.events = _check_events(events)
    if description is not None:
        endpoint.description = description
    await session.flush()
    changes = diff(before, _audited(endpoint))
    if changes:
        await _audit(session, actor, "webhook.changed", endpoint, changes)
    return endpoint


async def delete_endpoint(session: AsyncSession, actor: Principal, endpoint_id: str) -> None:
    """Delete an endpoint and its delivery log; nothing more is sent to it."""
    actor.require(WEBHOOKS_WRITE)
    endpoint = await _load(session, endpoint_id)
    await _audit(session, actor, "webhook.deleted", endpoint, diff(_audited(endpoint), {}))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession,
    actor: Principal,
    endpoint_id: str,
    *,
    overlap: timedelta,
    box: SecretBox,
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; during ``overlap`` deliveries carry both signatures."""
    actor.require(WEBHOOKS_WRITE)
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput("overlap must be between 0 and 7 days", field="overlap_seconds")
    endpoint = await _load(session, endpoint_id)
    now = now or utcnow()
    if overlap:
        endpoint.previous_sealed_secret = endpoint.sealed_secret
        endpoint.previous_secret_version = endpoint.secret_version
        endpoint.previous_secret_until = now + overlap
    else:
        endpoint.previous_sealed_secret = None
        endpoint.previous_secret_version = None
        endpoint.previous_secret_until = None
    secret = new_signing_secret()
    endpoint.sealed_secret, endpoint.secret_version = box.seal(secret)
    await session.flush()
    until = endpoint.previous_secret_until
    await _audit(
        session,
        actor,
        "webhook.secret_rotated",
        endpoint,
        {"previous_secret_until": {"before": None, "after": until.isoformat() if until else None}},
    )
    return endpoint, secret


async def list_deliveries(
    session: AsyncSession, actor: Principal, endpoint_id: str, *, limit: int = 50
) -> list[WebhookDelivery]:
    """An endpoint's most recent deliveries, newest first."""
    actor.require(WEBHOOKS_READ)
    if not 1 <= limit <= MAX_DELIVERY_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_DELIVERY_PAGE}", field="limit")
    endpoint = await _load(session, endpoint_id)
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.event_id.desc(), WebhookDelivery.id)
        .limit(limit)
    )
    return list(rows.all())


async def resend_delivery(
    session: AsyncSession,
    actor: Principal,
    endpoint_id: str,
    delivery_id: str,
    *,
    now: datetime | None = None,
) -> WebhookDelivery:
    """Make a delivery due at once (again, if it was delivered or gave up)."""
    actor.require(WEBHOOKS_WRITE)
    endpoint = await _load(session, endpoint_id)
    delivery = (
        await session.get(WebhookDelivery, delivery_id) if _ID_RE.fullmatch(delivery_id) else None
    )
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("no delivery with that id for this endpoint")
    if delivery.state != DeliveryState.PENDING:
        delivery.attempts = 0  # a new series of attempts, on the full retry schedule
    delivery.state = DeliveryState.PENDING
    delivery.next_attempt_at = now or utcnow()
    await session.flush()
    return delivery
