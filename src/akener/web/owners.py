"""Manage → Owners: every Owner ID with its keys, shared limits and 30-day traffic."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from akener.api.deps import AutoCommitRoute, get_runtime
from akener.keys import owners
from akener.web.deps import CurrentUser, DbSession
from akener.web.templating import render

router = APIRouter(prefix="/manage/owners", route_class=AutoCommitRoute)
DAYS = 30


@router.get("")
async def owners_page(request: Request, me: CurrentUser, session: DbSession) -> Response:
    """The owners, their keys, shared limits and requests over the last 30 days."""
    since = get_runtime(request).clock().date() - timedelta(days=DAYS - 1)
    rows = await owners.owner_overview(session, me.principal, since=since)
    return render(request, "owners/list.html", {"rows": rows, "days": DAYS})
