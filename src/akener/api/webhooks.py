"""REST routes for webhook endpoints and their delivery log: parse, call one service, answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import Principal
from akener.api.deps import AutoCommitRoute, get_principal, get_runtime, get_session
from akener.api.errors import responses
from akener.events import service
from akener.events.schemas import (
    DeliveryList,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
    WebhookRotate,
    WebhookUpdate,
)
from akener.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["webhooks"], route_class=AutoCommitRoute)

Session = Annotated[AsyncSession, Depends(get_session)]
Actor = Annotated[Principal, Depends(get_principal)]
Rt = Annotated[Runtime, Depends(get_runtime)]
AUTH = (401, 403, 503)
NO_STORE = "no-store"


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses=responses(*AUTH, 400, 409, 422),
)
async def create_webhook(
    body: WebhookCreate, session: Session, actor: Actor, runtime: Rt, response: Response
) -> WebhookCreated:
    """Register an endpoint. The answer holds its signing ``secret``, the only time it is shown."""
    response.headers["Cache-Control"] = NO_STORE
    endpoint, secret = await service.create_endpoint(
        session,
        actor,
        url=body.url,
        events=body.events,
        description=body.description,
        box=runtime.box,
        allow_private=runtime.settings.webhooks_allow_private,
        max_endpoints=runtime.settings.webhooks_max_endpoints,
    )
    return WebhookCreated.with_secret(endpoint, secret)


@router.get("/webhooks", response_model=WebhookList, responses=responses(*AUTH))
async def list_webhooks(session: Session, actor: Actor) -> WebhookList:
    """Every endpoint, oldest first."""
    rows = await service.list_endpoints(session, actor)
    return WebhookList(items=[WebhookRead.of(r) for r in rows])


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead, responses=responses(*AUTH, 404))
async def get_webhook(webhook_id: str, session: Session, actor: Actor) -> WebhookRead:
    """One endpoint."""
    return WebhookRead.of(await service.get_endpoint(session, actor, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}", response_model=WebhookRead, responses=responses(*AUTH, 400, 404, 422)
)
async def update_webhook(
    webhook_id: str, body: WebhookUpdate, session: Session, actor: Actor, runtime: Rt
) -> WebhookRead:
    """Change an endpoint's url, events or description."""
    endpoint = await service.update_endpoint(
        session,
        actor,
        webhook_id,
        url=body.url,
        events=body.events,
        description=body.description,
        allow_private=runtime.settings.webhooks_allow_private,
    )
    return WebhookRead.of(endpoint)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=responses(*AUTH, 404))
async def delete_webhook(webhook_id: str, session: Session, actor: Actor) -> Response:
    """Delete an endpoint and its delivery log."""
    await service.delete_endpoint(session, actor, webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    responses=responses(*AUTH, 400, 404, 422),
)
async def rotate_webhook_secret(
    webhook_id: str,
    body: WebhookRotate,
    session: Session,
    actor: Actor,
    runtime: Rt,
    response: Response,
) -> WebhookCreated:
    """A new signing secret, shown once; the old one also signs for ``overlap_seconds``."""
    response.headers["Cache-Control"] = NO_STORE
    endpoint, secret = await service.rotate_secret(
        session,
        actor,
        webhook_id,
        overlap=timedelta(seconds=body.overlap_seconds),
        box=runtime.box,
        now=runtime.clock(),
    )
    return WebhookCreated.with_secret(endpoint, secret)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryList,
    responses=responses(*AUTH, 404, 422),
)
async def list_deliveries(
    webhook_id: str,
    session: Session,
    actor: Actor,
    limit: Annotated[int, Query(ge=1, le=service.MAX_DELIVERY_PAGE)] = 50,
) -> DeliveryList:
    """The endpoint's most recent deliveries, newest first."""
    rows = await service.list_deliveries(session, actor, webhook_id, limit=limit)
    return DeliveryList(items=[DeliveryRead.of(r) for r in rows])


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/resend",
    response_model=DeliveryRead,
    responses=responses(*AUTH, 404),
)
async def resend_delivery(
    webhook_id: str, delivery_id: str, session: Session, actor: Actor, runtime: Rt
) -> DeliveryRead:
    """Send the delivery again at once (whatever its state)."""
    row = await service.resend_delivery(
        session, actor, webhook_id, delivery_id, now=runtime.clock()
    )
    runtime.sender.wake.set()
    return DeliveryRead.of(row)
