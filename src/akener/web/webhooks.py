"""Manage → Webhooks: register endpoints, see each one's delivery log, resend, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from akener.api.deps import AutoCommitRoute, get_runtime
from akener.errors import Conflict, InvalidInput
from akener.events import service
from akener.events.outbox import EVENT_TYPES
from akener.web.csrf import check_csrf
from akener.web.deps import CurrentUser, DbSession, flash, see_other
from akener.web.forms import form_of, text, texts
from akener.web.templating import render

router = APIRouter(
    prefix="/manage/webhooks", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)
LIST_URL = "/manage/webhooks"
NO_STORE = {"Cache-Control": "no-store"}


def webhook_url(webhook_id: str) -> str:
    """The endpoint page's path (relative)."""
    return f"{LIST_URL}/{quote(webhook_id, safe='')}"


@router.get("")
async def list_page(request: Request, me: CurrentUser, session: DbSession) -> Response:
    """Every endpoint, and the form to add one."""
    rows = await service.list_endpoints(session, me.principal)
    return render(request, "webhooks/list.html", {"hooks": rows, "event_types": EVENT_TYPES})


@router.post("")
async def create(request: Request, me: CurrentUser, session: DbSession) -> Response:
    """Register an endpoint; the answer shows its signing secret, once."""
    form = await form_of(request)
    runtime = get_runtime(request)
    values = {"url": text(form, "url"), "description": text(form, "description")}
    chosen = texts(form, "events")
    try:
        endpoint, secret = await service.create_endpoint(
            session,
            me.principal,
            url=values["url"],
            events=chosen,
            description=values["description"][:500],
            box=runtime.box,
            allow_private=runtime.settings.webhooks_allow_private,
            max_endpoints=runtime.settings.webhooks_max_endpoints,
        )
    except (InvalidInput, Conflict) as exc:
        rows = await service.list_endpoints(session, me.principal)
        context = {
            "hooks": rows,
            "event_types": EVENT_TYPES,
            "values": values,
            "chosen": chosen,
            "error": exc.message[:1].upper() + exc.message[1:],
        }
        status = 409 if isinstance(exc, Conflict) else 422
        return render(request, "webhooks/list.html", context, status_code=status)
    shown: dict[str, Any] = {
        "hook": endpoint,
        "secret": secret,
        "deliveries": [],
        "event_types": EVENT_TYPES,
    }
    return render(request, "webhooks/detail.html", shown, headers=NO_STORE)


@router.get("/{webhook_id}")
async def detail_page(
    request: Request, webhook_id: str, me: CurrentUser, session: DbSession
) -> Response:
    """One endpoint and its most recent deliveries."""
    endpoint = await service.get_endpoint(session, me.principal, webhook_id)
    deliveries = await service.list_deliveries(session, me.principal, endpoint.id)
    context = {"hook": endpoint, "deliveries": deliveries, "event_types": EVENT_TYPES}
    return render(request, "webhooks/detail.html", context)


@router.post("/{webhook_id}")
async def update(
    request: Request, webhook_id: str, me: CurrentUser, session: DbSession
) -> Response:
    """Change an endpoint's address, events or description."""
    form = await form_of(request)
    runtime = get_runtime(request)
    try:
        endpoint = await service.update_endpoint(
            session,
            me.principal,
            webhook_id,
            url=text(form, "url") or None,
            events=texts(form, "events") or None,
            description=text(form, "description")[:500],
            allow_private=runtime.settings.webhooks_allow_private,
        )
    except InvalidInput as exc:
        endpoint = await service.get_endpoint(session, me.principal, webhook_id)
        deliveries = await service.list_deliveries(session, me.principal, endpoint.id)
        context = {
            "hook": endpoint,
            "deliveries": deliveries,
            "event_types": EVENT_TYPES,
            "error": exc.message[:1].upper() + exc.message[1:],
        }
        return render(request, "webhooks/detail.html", context, status_code=422)
    flash(request, "The webhook was changed.")
    return see_other(webhook_url(endpoint.id))


@router.get("/{webhook_id}/delete")
async def confirm_delete(
    request: Request, webhook_id: str, me: CurrentUser, session: DbSession
) -> Response:
    """The delete confirmation as a page (JavaScript off; with it, a dialog asks)."""
    endpoint = await service.get_endpoint(session, me.principal, webhook_id)
    context = {
        "title": "Delete this webhook?",
        "message": f"Nothing more is sent to {endpoint.url}, and its delivery log is removed."
        " This cannot be undone.",
        "action": f"{webhook_url(endpoint.id)}/delete",
        "button": "Delete webhook",
        "cancel": webhook_url(endpoint.id),
    }
    return render(request, "confirm.html", context)


@router.post("/{webhook_id}/delete")
async def delete(
    request: Request, webhook_id: str, me: CurrentUser, session: DbSession
) -> Response:
    """Delete an endpoint and its delivery log."""
    await service.delete_endpoint(session, me.principal, webhook_id)
    flash(request, "The webhook was deleted.")
    return see_other(LIST_URL)


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend")
async def resend(
    request: Request, webhook_id: str, delivery_id: str, me: CurrentUser, session: DbSession
) -> Response:
    """Send a delivery again at once."""
    runtime = get_runtime(request)
    await service.resend_delivery(
        session, me.principal, webhook_id, delivery_id, now=runtime.clock()
    )
    runtime.sender.wake.set()
    flash(request, "The delivery will be sent again within a second.")
    return see_other(webhook_url(webhook_id))
