"""One key's page: its details, usage chart, audit history, and rotation with a grace period."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from akener.accounts.permissions import API_KEYS_READ, API_KEYS_WRITE, AUDIT_READ, Principal
from akener.api.deps import AutoCommitRoute, get_runtime
from akener.audit import service as audit
from akener.audit.actors import describe_actors
from akener.audit.models import AuditEvent
from akener.audit.schemas import AuditFilters
from akener.errors import Conflict, InvalidInput
from akener.keys import grants, service
from akener.keys.models import ApiKey
from akener.keys.usage import refused_by_day, usage_by_day
from akener.leaks import service as leaks
from akener.web.charts import reasons_in, render_usage_svg, usage_summary
from akener.web.csrf import check_csrf
from akener.web.deps import CurrentUser, DbSession, flash, see_other
from akener.web.forms import form_of, text
from akener.web.keys import NO_STORE
from akener.web.lifecycle import grace_choices, grace_from_form
from akener.web.templating import render

router = APIRouter(
    prefix="/manage/api-keys", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)
USAGE_DAYS = 30
REFUSED_WINDOW = timedelta(days=1)
HISTORY_SIZE = 20


@router.get("/{key_id}")
async def detail_page(
    request: Request,
    key_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Everything about one key."""
    return await _render(request, session, me.principal, key_id)


async def _render(
    request: Request,
    session: AsyncSession,
    actor: Principal,
    key_id: str,
    *,
    rotated: str | None = None,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    now = get_runtime(request).clock()
    key = await service.get_key(session, actor, key_id)
    usage = await usage_by_day(session, actor, key.id, days=USAGE_DAYS, today=now.date())
    refusals = await refused_by_day(session, actor, key.id, days=USAGE_DAYS, today=now.date())
    history: list[AuditEvent] = []
    more: str | None = None
    if actor.has(AUDIT_READ):
        history, more = await audit.list_events(
            session, actor, AuditFilters(target=key.id), limit=HISTORY_SIZE
        )
    names = await describe_actors(session, actor, {key.created_by, *(e.actor for e in history)})
    refused = await leaks.last_refused(session, actor, key.id, since=now - REFUSED_WINDOW)
    context = {
        "key": key,
        "usage": usage,
        "usage_total": sum(n for _, n in usage),
        "usage_svg": render_usage_svg(usage, refused=refusals),
        "usage_summary": usage_summary(usage, refusals),
        "usage_rows": list(zip(usage, refusals, strict=True)),
        "usage_reasons": reasons_in(refusals),
        "history": history,
        "more_history": more is not None,
        "names": names,
        "grace": grace_choices(key, now),
        "may_widen": grants.may_widen(actor, key),
        "rotate_token": rotate_token(request, key),
        "rotated": rotated,
        "return_to": f"/manage/api-keys/{key.id}",
        "refused": refused,
        **(extra or {}),
    }
    # The page that shows a new secret must not be kept by any cache.
    headers = NO_STORE if rotated else None
    return render(request, "keys/detail.html", context, status_code=status_code, headers=headers)


def rotate_token(request: Request, key: ApiKey) -> str:
    """The rotate form's one-time token: bound to this session and to the key's current secret.

    A rotation changes the secret, so the token of any page shown before it (a reload, the back
    button, a second tab) no longer matches: replaying the form rotates nothing. No state is kept
    and the new secret is stored nowhere.
    """
    session_token: str = request.state.page["csrf_token"]
    message = f"rotate|{key.id}|{key.digest}".encode()
    return hmac.new(session_token.encode(), message, hashlib.sha256).hexdigest()


def key_url(key_id: str) -> str:
    """The key page's path (relative: never built from the Host header)."""
    return f"/manage/api-keys/{quote(key_id, safe='')}"


@router.post("/{key_id}/rotate")
async def rotate(
    request: Request,
    key_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Give the key a new secret, shown once on the page this answers with (never redirected).

    A replayed form (reload, back button) lands on the key page without rotating again.
    """
    me.principal.require(API_KEYS_WRITE)  # refused as such, before any complaint about the form
    form = await form_of(request)
    runtime = get_runtime(request)
    chosen = text(form, "grace_period_seconds")
    given = text(form, "rotate_token")

    def unchanged(key: ApiKey) -> bool:
        return hmac.compare_digest(given.encode(), rotate_token(request, key).encode())

    try:
        row, plaintext = await service.rotate_key(
            session,
            me.principal,
            key_id,
            grace_period_seconds=grace_from_form(chosen),
            peppers=runtime.peppers,
            now=runtime.clock(),
            unchanged=unchanged,
        )
    except service.AlreadyRotated:
        flash(request, "That rotation was already done; a new secret is shown only once.", "info")
        return see_other(key_url(key_id))
    except (InvalidInput, Conflict) as exc:
        extra = {"rotate_error": exc.message[:1].upper() + exc.message[1:], "chosen": chosen}
        status = 409 if isinstance(exc, Conflict) else 422
        return await _render(
            request, session, me.principal, key_id, extra=extra, status_code=status
        )
    return await _render(request, session, me.principal, row.id, rotated=plaintext)


@router.post("/{key_id}/leaked")
async def report_leaked(
    request: Request,
    key_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Report the key as leaked: switched off (unless AKENER_ON_LEAK=notify), audited, announced."""
    me.principal.require(API_KEYS_WRITE)
    form = await form_of(request)
    runtime = get_runtime(request)
    row = await leaks.report_leak(
        session,
        me.principal,
        key_id,
        url=text(form, "url")[:1000] or None,
        on_leak=runtime.settings.on_leak,
        now=runtime.clock(),
    )
    flash(request, f"Key “{row.name}” was reported as leaked; it is now {row.status}.")
    return see_other(key_url(row.id))


@router.get("/{key_id}/leaked")
@router.get("/{key_id}/rotate")
@router.get("/{key_id}/status")
async def action_by_get(key_id: str, me: CurrentUser) -> Response:
    """An action URL opened by GET (a bookmark, a reload) changes nothing: go to the key page."""
    me.principal.require(API_KEYS_READ)  # as the key page itself
    return see_other(key_url(key_id))
