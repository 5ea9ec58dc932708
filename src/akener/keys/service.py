"""Key operations. Each checks the caller's permission, keeps the rules and emits change events."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import (
    API_KEYS_DELETE,
    API_KEYS_READ,
    API_KEYS_WRITE,
    Principal,
)
from akener.audit.service import diff, record_event
from akener.errors import Conflict, InvalidInput, NotFound
from akener.keys import tokens
from akener.keys.events import record_key_change
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository

MAX_PAGE = 100
_ID_RE = re.compile(r"[0-9a-f]{32}")


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a key named {name!r} already exists; key names must be unique")


async def create_key(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str,
    scopes: list[str],
    peppers: Peppers,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which exists nowhere else afterwards."""
    actor.require(API_KEYS_WRITE)
    actor.require_can_grant(scopes)
    plaintext = tokens.generate_key()
    key = ApiKey(
        name=name,
        digest=peppers.digest_current(plaintext),
        pepper_version=peppers.current,
        masked_key=tokens.mask(plaintext),
        status=KeyStatus.ACTIVE.value,
        scopes=list(scopes),
        created_by=actor.actor,
    )
    try:
        async with session.begin_nested():
            await KeyRepository(session).add(key)
    except IntegrityError as exc:
        raise _name_taken(name) from exc
    await _audit(session, actor, "key.created", key, diff({}, _audited(key)))
    return key, plaintext


async def list_keys(
    session: AsyncSession,
    actor: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    q: str | None = None,
) -> tuple[list[ApiKey], str | None]:
    """One page of keys, newest first."""
    actor.require(API_KEYS_READ)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if status is not None and status not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    return await KeyRepository(session).list_page(limit=limit, cursor=cursor, status=status, q=q)


async def get_key(session: AsyncSession, actor: Principal, key_id: str) -> ApiKey:
    """The key with ``key_id``; NotFound otherwise."""
    actor.require(API_KEYS_READ)
    return await _load(session, key_id)


async def update_key(
    session: AsyncSession,
    actor: Principal,
    key_id: str,
    *,
    status: str | None = None,
    name: str | None = None,
) -> ApiKey:
    """Switch a key on or off and/or rename it."""
    actor.require(API_KEYS_WRITE)
    key = await _load(session, key_id)
    if status is not None and status not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    before = _audited(key)
    if name is not None and name != key.name:
        key.name = name
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError as exc:
            raise _name_taken(name) from exc
    if status is not None and status != key.status:
        key.status = status
        await session.flush()
    await record_key_change(session, key.id)
    after = _audited(key)
    if before["name"] != after["name"]:
        await _audit(session, actor, "key.renamed", key, diff(before, after))
    if before["status"] != after["status"]:
        action = "key.activated" if key.is_active else "key.deactivated"
        await _audit(session, actor, action, key, diff(before, after))
    return key


async def set_key_status(
    session: AsyncSession, actor: Principal, key_id: str, status: KeyStatus
) -> ApiKey:
    """Switch a key ACTIVE or INACTIVE without deleting it."""
    return await update_key(session, actor, key_id, status=status.value)


async def delete_key(session: AsyncSession, actor: Principal, key_id: str) -> ApiKey:
    """Delete a key for good; it is refused from the moment the transaction commits."""
    actor.require(API_KEYS_DELETE)
    key = await _load(session, key_id)
    await KeyRepository(session).delete(key)
    await record_key_change(session, key.id)
    await _audit(session, actor, "key.deleted", key, diff(_audited(key), {}))
    return key


def _audited(key: ApiKey) -> dict[str, Any]:
    """The fields of a key the audit log tracks (never the digest or the secret)."""
    return {"name": key.name, "status": key.status, "scopes": list(key.scopes)}


async def _audit(
    session: AsyncSession, actor: Principal, action: str, key: ApiKey, changes: dict[str, Any]
) -> None:
    await record_event(
        session,
        actor,
        action,
        target_type="key",
        target_id=key.id,
        target_name=key.name,
        changes=changes,
    )


async def _load(session: AsyncSession, key_id: str) -> ApiKey:
    # Ids are 32 hex characters; anything else cannot exist (and PostgreSQL rejects some bytes).
    key = await KeyRepository(session).get_by_id(key_id) if _ID_RE.fullmatch(key_id) else None
    if key is None:
        raise NotFound("no API key with that id")
    return key


async def get_calling_key(session: AsyncSession, actor: Principal) -> ApiKey:
    """The key a request was made with (any valid key may read itself)."""
    if actor.kind != "key":
        raise NotFound("this request was not made with an API key")
    return await _load(session, actor.id)
