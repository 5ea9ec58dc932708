"""Manage → API Keys: list, create (shown once), switch on/off, delete. Same services as the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse, Response

from akener.accounts.permissions import (
    ALL_OPERATOR_SCOPES,
    API_KEYS_DELETE,
    API_KEYS_READ,
    API_KEYS_WRITE,
    Principal,
)
from akener.api.deps import AutoCommitRoute, get_runtime
from akener.errors import AkenerError, InvalidInput
from akener.keys import bulk as bulk_keys
from akener.keys import service
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.schemas import clean_name, clean_scopes
from akener.web.csrf import check_csrf
from akener.web.deps import (
    CurrentUser,
    DbSession,
    flash,
    safe_next,
    see_other,
    wants_json,
)
from akener.web.forms import clean, clean_list, form_of, text, texts, words
from akener.web.lifecycle import EXPIRING_WINDOW, EXPIRY_CHOICES, expiry_from_form
from akener.web.limit_fields import parse_credits, parse_windows
from akener.web.templating import render, render_fragment

router = APIRouter(
    prefix="/manage/api-keys", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)
PAGE_SIZE = 20
LIST_URL = "/manage/api-keys"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
COUNT_UP_TO = 10_000  # the page says "10,000+ keys" past this: counting further costs time
EXPIRING_SHOWN = 10  # keys named in the "expire soon" notice; the count covers the rest


def grantable_scopes(actor: Principal) -> tuple[list[str], bool]:
    """The scopes this user may put on a key, and whether they may type any operator scope."""
    concrete = sorted(p for p in actor.permissions if p != ALL_OPERATOR_SCOPES)
    return concrete, ALL_OPERATOR_SCOPES in actor.permissions


def _form_context(
    request: Request, actor: Principal, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    scopes, free = grantable_scopes(actor)
    tomorrow = (get_runtime(request).clock() + timedelta(days=1)).date()
    return {
        "grantable": scopes,
        "free_scopes": free,
        "values": values or {},
        "expiry_choices": EXPIRY_CHOICES,
        "expiry_min": tomorrow.isoformat(),
    }


LIST_FILTERS = ("q", "owner_id", "status", "expiry", "scope", "sort")


@router.get("")
async def list_page(
    request: Request,
    me: CurrentUser,
    session: DbSession,
    cursor: str | None = None,
) -> Response:
    """The keys table, one page at a time: searched, filtered and sorted on the server."""
    return await _render_list(request, session, me.principal, cursor=cursor)


def _list_query(request: Request) -> dict[str, str]:
    """The list's filters as given in the URL (blank ones left out)."""
    given = {name: request.query_params.get(name, "").strip() for name in LIST_FILTERS}
    return {name: value[:200] for name, value in given.items() if value}


async def _render_list(
    request: Request,
    session: AsyncSession,
    actor: Principal,
    *,
    cursor: str | None = None,
    created: tuple[ApiKey, str] | None = None,
    status_code: int = 200,
) -> Response:
    now = get_runtime(request).clock()
    chosen = _list_query(request) if created is None else {}
    filters = {k: v for k, v in chosen.items() if k != "sort"}
    rows: list[ApiKey] = []
    next_cursor, matching, error = None, 0, None
    try:
        rows, next_cursor = await service.list_keys(
            session, actor, limit=PAGE_SIZE, cursor=(cursor or None), now=now, **chosen
        )
        matching = await service.count_keys(
            session, actor, now=now, up_to=COUNT_UP_TO + 1, **filters
        )
    except InvalidInput as exc:
        error = exc.message[:1].upper() + exc.message[1:]
        status_code = 422
    expiring = await service.count_expiring(session, actor, within=EXPIRING_WINDOW, now=now)
    soonest = await service.list_expiring_keys(
        session, actor, within=EXPIRING_WINDOW, now=now, limit=EXPIRING_SHOWN
    )
    kept = urlencode(chosen)
    context = {
        "expiring_count": expiring,
        "expiring": soonest if expiring else [],
        "keys": rows,
        "next_cursor": next_cursor,
        "first_page": not cursor,
        "created": created,
        "chosen": chosen,
        "filtered": bool(filters),
        "matching": min(matching, COUNT_UP_TO),
        "more_than": matching > COUNT_UP_TO,
        "list_error": error,
        "kept": kept,
        "sort": chosen.get("sort", "-created"),
        "return_to": request.url.path + ("?" + str(request.url.query) if request.url.query else ""),
        **_form_context(request, actor),
    }
    headers = NO_STORE if created else None
    return render(request, "keys/list.html", context, status_code=status_code, headers=headers)


@router.get("/new")
async def new_page(request: Request, me: CurrentUser) -> Response:
    """The create form as its own page (what the Create button opens without JavaScript)."""
    me.principal.require(API_KEYS_READ)
    me.principal.require(API_KEYS_WRITE)
    return render(request, "keys/new.html", _form_context(request, me.principal))


def _scopes_from(form_values: list[str], typed: str) -> list[str]:
    return clean_list("scopes", clean_scopes, [*form_values, *words(typed)])


LIMIT_FIELDS = (
    "owner_id", "rate_limits", "credits", "refill_amount", "refill_interval", "allowed_ips",
)  # fmt: skip


@router.post("")
async def create(
    request: Request,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Create a key and show its plaintext once, in this response and nowhere else."""
    form = await form_of(request)
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "scopes": texts(form, "scope"),
        "other": text(form, "other_scopes"),
        "expires_in": text(form, "expires_in"),
        "expires_on": text(form, "expires_on"),
        **{name: text(form, name) for name in LIMIT_FIELDS},
    }
    runtime = get_runtime(request)
    now = runtime.clock()
    try:
        name = clean("name", clean_name, values["name"])
        scopes = _scopes_from(values["scopes"], values["other"])
        expires_at = expiry_from_form(values["expires_in"], values["expires_on"], now)
        row, plaintext = await service.create_key(
            session,
            me.principal,
            name=name,
            scopes=scopes,
            expires_at=expires_at,
            peppers=runtime.peppers,
            now=now,
            owner_id=values["owner_id"].strip() or None,
            rate_limits=parse_windows(values["rate_limits"]),
            credits=parse_credits(
                values["credits"], values["refill_amount"], values["refill_interval"]
            ),
            allowed_ips=[v.strip() for v in values["allowed_ips"].splitlines() if v.strip()],
        )
    except AkenerError as exc:
        return _create_failed(request, me.principal, exc, values)
    if wants_json(request):
        body = {
            "id": row.id,
            "name": row.name,
            "key": plaintext,
            "row_html": render_fragment(request, "keys/_row.html", {"key": row}),
        }
        return JSONResponse(body, status_code=201, headers=NO_STORE)
    return await _render_list(request, session, me.principal, created=(row, plaintext))


def _create_failed(
    request: Request, actor: Principal, exc: AkenerError, values: dict[str, Any]
) -> Response:
    status = {"FORBIDDEN": 403, "CONFLICT": 409}.get(exc.code, 422)
    field = getattr(exc, "field", None)
    field = "expires_on" if field == "expires_at" else field  # the form's name for the expiry
    message = exc.message[:1].upper() + exc.message[1:]
    if wants_json(request):
        error = {"code": exc.code, "message": message, "field": field}
        return JSONResponse({"error": error}, status_code=status)
    context = {**_form_context(request, actor, values), "error": message, "error_field": field}
    return render(request, "keys/new.html", context, status_code=status)


@router.post("/{key_id}/status")
async def set_status(
    request: Request,
    key_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Switch a key ACTIVE or INACTIVE; it is refused or accepted from the next request."""
    form = await form_of(request)
    wanted = text(form, "status")
    if wanted not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    row = await service.set_key_status(session, me.principal, key_id, KeyStatus(wanted))
    state = "on (ACTIVE)" if row.is_active else "off (INACTIVE)"
    message = f"Key “{row.name}” is now {state}."
    if wants_json(request):
        return JSONResponse({"id": row.id, "status": row.status, "message": message})
    flash(request, message)
    return see_other(safe_next(text(form, "return_to"), LIST_URL))


@router.get("/{key_id}/delete")
async def confirm_delete(
    request: Request,
    key_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """The confirmation step as a page (what Delete opens without JavaScript)."""
    row = await service.get_key(session, me.principal, key_id)
    return render(request, "keys/delete.html", {"key": row})


@router.post("/{key_id}/delete")
async def delete(
    request: Request,
    key_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Delete a key for good."""
    row = await service.delete_key(session, me.principal, key_id)
    message = f"Key “{row.name}” was deleted."
    if wants_json(request):
        return JSONResponse({"id": row.id, "message": message})
    flash(request, message)
    return see_other(LIST_URL)


BULK_VERBS = {"activate": "Activate", "deactivate": "Deactivate", "delete": "Delete"}


@router.post("/bulk")
async def bulk(request: Request, me: CurrentUser, session: DbSession) -> Response:
    """Act on the selected keys after one confirmation that says how many (all or none)."""
    form = await form_of(request)
    action = text(form, "action")
    me.principal.require(API_KEYS_DELETE if action == "delete" else API_KEYS_WRITE)
    key_ids = [k for k in texts(form, "key") if k]
    back = safe_next(text(form, "return_to"), LIST_URL)
    if action not in BULK_VERBS or not key_ids:
        flash(request, "Select one or more keys and an action first.", "info")
        return see_other(back)
    if text(form, "confirmed") != "yes":
        rows = await bulk_keys.selected(session, me.principal, key_ids)
        context = {"action": action, "verb": BULK_VERBS[action], "keys": rows, "return_to": back}
        return render(request, "keys/bulk.html", context)
    changed = await bulk_keys.apply(session, me.principal, key_ids, action)
    done = {"activate": "activated", "deactivate": "deactivated", "delete": "deleted"}[action]
    flash(request, f"{len(changed)} key{'' if len(changed) == 1 else 's'} {done}.")
    return see_other(back)
