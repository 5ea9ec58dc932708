"""REST route for the audit log (read only: nothing in akener edits or deletes audit rows)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import Principal
from akener.api.deps import AutoCommitRoute, get_principal, get_session
from akener.api.errors import responses
from akener.audit import service
from akener.audit.schemas import AuditEventRead, AuditFilters, AuditPage

router = APIRouter(prefix="/api/v1", tags=["audit"], route_class=AutoCommitRoute)


@router.get("/audit", response_model=AuditPage, responses=responses(401, 403, 422, 503))
async def list_audit_events(
    session: Annotated[AsyncSession, Depends(get_session)],
    actor: Annotated[Principal, Depends(get_principal)],
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    by: Annotated[str | None, Query(alias="actor", max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> AuditPage:
    """Audit events newest first; filter by actor, action, target (id or type) and time range."""
    filters = AuditFilters.parse(actor=by, action=action, target=target, since=since, until=until)
    rows, next_cursor = await service.list_events(
        session, actor, filters, limit=limit, cursor=cursor
    )
    return AuditPage(
        items=[AuditEventRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )
