"""REST routes for keys: parse, call one service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import Principal
from akener.api.deps import AutoCommitRoute, get_principal, get_runtime, get_session
from akener.api.errors import responses
from akener.keys import service
from akener.keys.schemas import (
    KeyCreate,
    KeyCreated,
    KeyPage,
    KeyRead,
    KeyRotate,
    KeyUpdate,
    LeakReport,
    StatusValue,
    credits_in,
    windows_in,
)
from akener.leaks import service as leaks
from akener.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["keys"], route_class=AutoCommitRoute)

Session = Annotated[AsyncSession, Depends(get_session)]
Actor = Annotated[Principal, Depends(get_principal)]
AUTH = (401, 403, 503)
# An answer carrying a plaintext key must not be kept by a browser, proxy or client cache.
NO_STORE = "no-store"


@router.get("/keys", response_model=KeyPage, responses=responses(*AUTH, 422))
async def list_keys(
    session: Session,
    actor: Actor,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: StatusValue | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    expiry: Annotated[Literal["expired", "expiring", "never"] | None, Query()] = None,
    scope: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[
        Literal["-created", "created", "name", "-name", "-last_used", "last_used"], Query()
    ] = "-created",
    owner_id: Annotated[str | None, Query(max_length=128)] = None,
) -> KeyPage:
    """Keys newest first unless ``sort`` says otherwise; filters; pages with ``next_cursor``.

    ``expiry``: ``expired``, ``expiring`` (within 7 days) or ``never``; ``scope``: keys holding
    that scope; ``owner_id``: that owner's keys; ``sort``: ``name``, ``created`` or
    ``last_used``, ``-`` first for descending (never-used keys come last either way).
    """
    rows, next_cursor = await service.list_keys(
        session,
        actor,
        limit=limit,
        cursor=cursor,
        status=status,
        q=q,
        expiry=expiry,
        scope=scope,
        sort=sort,
        now=runtime.clock(),
        owner_id=owner_id,
    )
    return KeyPage(items=[KeyRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/keys", status_code=201, response_model=KeyCreated, responses=responses(*AUTH, 400, 409, 422)
)
async def create_key(
    body: KeyCreate,
    session: Session,
    actor: Actor,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    response: Response,
) -> KeyCreated:
    """Create a key. The answer holds the plaintext ``key``: the only time it is ever shown."""
    response.headers["Cache-Control"] = NO_STORE
    row, plaintext = await service.create_key(
        session,
        actor,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        peppers=runtime.peppers,
        now=runtime.clock(),
        owner_id=body.owner_id,
        rate_limits=windows_in(body.rate_limits),
        credits=credits_in(body.credits),
        allowed_ips=body.allowed_ips,
    )
    return KeyCreated.of(row, plaintext)


@router.get("/keys/{key_id}", response_model=KeyRead, responses=responses(*AUTH, 404))
async def get_key(key_id: str, session: Session, actor: Actor) -> KeyRead:
    """One key by id."""
    return KeyRead.model_validate(await service.get_key(session, actor, key_id))


@router.patch(
    "/keys/{key_id}", response_model=KeyRead, responses=responses(*AUTH, 400, 404, 409, 422)
)
async def update_key(
    key_id: str,
    body: KeyUpdate,
    session: Session,
    actor: Actor,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> KeyRead:
    """Switch a key ACTIVE/INACTIVE, rename it, set or clear (null) its expiry, replace its scopes.

    Also sets its ``owner_id``, ``rate_limits``, ``credits`` and ``allowed_ips`` (null clears).
    INACTIVE is refused from the very next request. Switching a key on, extending or clearing
    its expiry, adding scopes and loosening its limits (raising or removing a window, adding
    credits, widening the allowlist, another owner) need every scope the key holds (and every
    one added); a key can do none of these to itself.
    """
    given = body.model_fields_set
    expiry = body.expires_at if "expires_at" in given else service.UNSET
    row = await service.update_key(
        session,
        actor,
        key_id,
        status=body.status,
        name=body.name,
        expires_at=expiry,
        scopes=body.scopes,
        now=runtime.clock(),
        owner_id=body.owner_id if "owner_id" in given else service.UNSET,
        rate_limits=windows_in(body.rate_limits) if "rate_limits" in given else service.UNSET,
        credits=credits_in(body.credits) if "credits" in given else service.UNSET,
        allowed_ips=body.allowed_ips if "allowed_ips" in given else service.UNSET,
    )
    return KeyRead.model_validate(row)


@router.post(
    "/keys/{key_id}/rotate",
    response_model=KeyCreated,
    responses=responses(*AUTH, 400, 404, 409, 422),
)
async def rotate_key(
    key_id: str,
    body: KeyRotate,
    session: Session,
    actor: Actor,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    response: Response,
) -> KeyCreated:
    """Give the key a new secret, shown this once. The old secret works for the grace period.

    Needs every scope the key holds. A key may rotate itself only with a grace period of 0.
    """
    response.headers["Cache-Control"] = NO_STORE
    row, plaintext = await service.rotate_key(
        session,
        actor,
        key_id,
        grace_period_seconds=body.grace_period_seconds,
        peppers=runtime.peppers,
        now=runtime.clock(),
    )
    return KeyCreated.of(row, plaintext)


@router.delete("/keys/{key_id}", status_code=204, responses=responses(*AUTH, 404))
async def delete_key(key_id: str, session: Session, actor: Actor) -> Response:
    """Delete a key for good."""
    await service.delete_key(session, actor, key_id)
    return Response(status_code=204)


@router.post(
    "/keys/{key_id}/leaked", response_model=KeyRead, responses=responses(*AUTH, 400, 404, 422)
)
async def report_leaked(
    key_id: str,
    body: LeakReport,
    session: Session,
    actor: Actor,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> KeyRead:
    """Report the key as leaked: deactivated (unless AKENER_ON_LEAK=notify), audited, announced.

    Needs ``api_keys.write``; a key may report itself. Repeating a report changes nothing more.
    """
    row = await leaks.report_leak(
        session, actor, key_id, url=body.url, on_leak=runtime.settings.on_leak, now=runtime.clock()
    )
    return KeyRead.model_validate(row)


@router.get("/whoami", response_model=KeyRead, responses=responses(401, 404, 503))
async def whoami(session: Session, actor: Actor) -> KeyRead:
    """The key that made this request."""
    return KeyRead.model_validate(await service.get_calling_key(session, actor))
