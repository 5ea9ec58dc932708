"""REST routes for owners: the limits shared by every key with one ``owner_id``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import Principal
from akener.api.deps import AutoCommitRoute, get_principal, get_runtime, get_session
from akener.api.errors import responses
from akener.keys import owners
from akener.keys.schemas import OwnerPage, OwnerRead, OwnerSet, credits_in, windows_in
from akener.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["owners"], route_class=AutoCommitRoute)

Session = Annotated[AsyncSession, Depends(get_session)]
Actor = Annotated[Principal, Depends(get_principal)]
AUTH = (401, 403, 503)


@router.get("/owners", response_model=OwnerPage, responses=responses(*AUTH, 422))
async def list_owners(
    session: Session,
    actor: Actor,
    limit: Annotated[int, Query(ge=1, le=owners.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OwnerPage:
    """Owners (every ``owner_id`` with keys or shared limits) ordered by id, each with its
    shared limits and key count; pages with ``next_cursor``."""
    rows, next_cursor = await owners.page_owners(session, actor, limit=limit, cursor=cursor)
    return OwnerPage(items=[OwnerRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/owners/{owner_id}", response_model=OwnerRead, responses=responses(*AUTH, 404, 422))
async def get_owner(owner_id: str, session: Session, actor: Actor) -> OwnerRead:
    """An owner's shared rate limits and credits, and how many keys it has."""
    return OwnerRead.model_validate(await owners.get_owner(session, actor, owner_id))


@router.put("/owners/{owner_id}", response_model=OwnerRead, responses=responses(*AUTH, 400, 422))
async def set_owner(
    owner_id: str,
    body: OwnerSet,
    session: Session,
    actor: Actor,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> OwnerRead:
    """Replace the owner's shared limits; every key with this ``owner_id`` is bound by them.

    Loosening them needs every scope the owner's keys hold; a limited key cannot do it.
    """
    row = await owners.set_owner(
        session,
        actor,
        owner_id,
        rate_limits=windows_in(body.rate_limits) or [],
        credits=credits_in(body.credits),
        now=runtime.clock(),
    )
    return OwnerRead.model_validate(row)
