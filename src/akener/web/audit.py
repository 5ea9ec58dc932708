"""Manage → Audit log: every recorded change, newest first, filtered and paged. Read only."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from akener.accounts.permissions import AUDIT_READ, Principal
from akener.api.deps import AutoCommitRoute
from akener.audit import service as audit
from akener.audit.actions import ACTION_LABELS, KNOWN_ACTIONS
from akener.audit.actors import actor_from_input, describe_actors
from akener.audit.models import AuditEvent
from akener.audit.schemas import AuditFilters
from akener.errors import InvalidInput
from akener.web.deps import CurrentUser, DbSession
from akener.web.templating import render

router = APIRouter(prefix="/manage/audit", route_class=AutoCommitRoute)
PAGE_SIZE = 30  # with changes kept to two lines, a page stays a few screens tall
LIST_URL = "/manage/audit"
FIELDS = ("actor", "action", "target", "since", "until")
LABELS = {"since": "From", "until": "To"}
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_text(values: dict[str, str]) -> None:
    for name, value in values.items():
        if len(value) > 200 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            label = LABELS.get(name, name.capitalize())
            raise InvalidInput(
                f"The “{label}” filter must be at most 200 characters, without control characters.",
                field=name,
            )


def _filters_error(exc: InvalidInput) -> str:
    """The service's message in the words of this page's form."""
    if exc.field == "since" and "after" in exc.message:
        return "The “From” date must not be after the “To” date."
    if exc.field in LABELS:
        return f"The “{LABELS[exc.field]}” date must be a date such as 2026-11-29."
    if exc.field == "cursor":
        return "That page of the log does not exist; start again from the newest events."
    return exc.message[:1].upper() + exc.message[1:]


def _until(value: str) -> str:
    # A date in "To" includes that whole day (the service compares instants).
    return f"{value}T23:59:59.999999+00:00" if _DAY_RE.fullmatch(value.strip()) else value


async def _filters(
    session: AsyncSession, viewer: Principal, values: dict[str, str]
) -> AuditFilters:
    """The page's filter fields as service filters; InvalidInput names the field at fault."""
    _check_text(values)
    return AuditFilters.parse(
        actor=await actor_from_input(session, viewer, values["actor"]),
        action=values["action"],
        target=values["target"].strip(),
        since=values["since"],
        until=_until(values["until"]),
    )


def _page_links(kept: dict[str, str], next_cursor: str | None) -> dict[str, str | None]:
    newest = f"{LIST_URL}?{urlencode(kept)}" if kept else LIST_URL
    older = f"{LIST_URL}?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None
    return {"newest_url": newest, "older_url": older}


@router.get("")
async def audit_page(
    request: Request,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """The audit log as a table; malformed filters get a message on the page, never an error."""
    viewer = me.principal
    viewer.require(AUDIT_READ)
    values = {name: request.query_params.get(name, "") for name in FIELDS}
    cursor = request.query_params.get("cursor") or None
    rows: list[AuditEvent] = []
    next_cursor, error, error_field = None, None, None
    try:
        filters = await _filters(session, viewer, {**values, "cursor": cursor or ""})
        rows, next_cursor = await audit.list_events(
            session, viewer, filters, limit=PAGE_SIZE, cursor=cursor
        )
    except InvalidInput as exc:
        error, error_field = _filters_error(exc), exc.field
    kept = {name: value for name, value in values.items() if value}
    context = {
        "events": rows,
        "values": values,
        "error": error,
        "error_field": error_field,
        "names": await describe_actors(session, viewer, {e.actor for e in rows}),
        "actions": [(a, ACTION_LABELS[a]) for a in KNOWN_ACTIONS],
        "filtered": bool(kept),
        "first_page": cursor is None,
        **_page_links(kept, next_cursor),
    }
    return render(request, "audit/list.html", context, status_code=422 if error else 200)
