"""Key operations. Each checks the caller's permission, keeps the rules and emits change events."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
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
from akener.db.base import utcnow
from akener.errors import Conflict, InvalidInput, NotFound
from akener.events.models import OutboxEvent
from akener.events.outbox import emit_event
from akener.keys import grants, listing, tokens
from akener.keys.events import record_key_change
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository
from akener.keys.schemas import MAX_GRACE_SECONDS

MAX_PAGE = 100


class AlreadyRotated(Conflict):
    """A rotation asked for a key whose secret changed since the asker last saw it."""


class Unset:
    """Marks an argument that was not given (None means "clear")."""


UNSET = Unset()
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
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which exists nowhere else afterwards."""
    actor.require(API_KEYS_WRITE)
    actor.require_can_grant(scopes)
    _check_expiry(expires_at, now or utcnow())
    plaintext = tokens.generate_key()
    key = ApiKey(
        name=name,
        digest=peppers.digest_current(plaintext),
        pepper_version=peppers.current,
        masked_key=tokens.mask(plaintext),
        status=KeyStatus.ACTIVE.value,
        scopes=list(scopes),
        created_by=actor.actor,
        expires_at=expires_at,
    )
    try:
        async with session.begin_nested():
            await KeyRepository(session).add(key)
    except IntegrityError as exc:
        raise _name_taken(name) from exc
    await _audit(session, actor, "key.created", key, diff({}, _audited(key)))
    await emit_key_event(session, "key.created", key, actor.actor)
    return key, plaintext


async def list_keys(
    session: AsyncSession,
    actor: Principal,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    q: str | None = None,
    expiry: str | None = None,
    scope: str | None = None,
    sort: str = listing.DEFAULT_SORT,
    now: datetime | None = None,
) -> tuple[list[ApiKey], str | None]:
    """One page of keys, filtered and sorted (newest first unless told otherwise)."""
    query = _key_query(
        actor, cursor=cursor, status=status, q=q, expiry=expiry, scope=scope, sort=sort
    )
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return await listing.list_page(session, query, limit=limit, now=now or utcnow())


async def count_keys(
    session: AsyncSession,
    actor: Principal,
    *,
    status: str | None = None,
    q: str | None = None,
    expiry: str | None = None,
    scope: str | None = None,
    now: datetime | None = None,
    up_to: int | None = None,
) -> int:
    """How many keys match these filters (no more than ``up_to`` when given)."""
    query = _key_query(actor, status=status, q=q, expiry=expiry, scope=scope)
    return await listing.count(session, query, now=now or utcnow(), up_to=up_to)


def _key_query(actor: Principal, **values: Any) -> listing.KeyQuery:
    actor.require(API_KEYS_READ)
    status, q = values.get("status"), values.get("q")
    if status is not None and status not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    if q and any(ord(ch) < 32 or ord(ch) == 127 for ch in q):
        # Names never hold control characters, and PostgreSQL refuses NUL in a parameter.
        raise InvalidInput("q must not contain control characters", field="q")
    query = listing.KeyQuery(**values)
    query.check()
    return query


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
    expires_at: datetime | Unset | None = UNSET,
    scopes: list[str] | None = None,
    now: datetime | None = None,
) -> ApiKey:
    """Switch a key on or off, rename it, set or clear its expiry, and/or replace its scopes.

    What gives the key more (switching it on, a later or no expiry, new scopes) is granting it:
    see akener.keys.grants.
    """
    actor.require(API_KEYS_WRITE)
    if status is not None and status not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    key = await _load(session, key_id, for_update=True)
    wanted = key.expires_at if isinstance(expires_at, Unset) else expires_at
    grants.require_may_change(
        actor,
        key,
        grants.Widening(
            reactivate=status == KeyStatus.ACTIVE.value and not key.is_active,
            extend_expiry=grants.extends_expiry(key.expires_at, wanted),
            added_scopes=grants.added_scopes(key, scopes or ()),
        ),
    )
    before = _audited(key)
    if wanted != key.expires_at:
        _check_expiry(wanted, now or utcnow())
        if key.previous_valid_until and wanted and key.previous_valid_until > wanted:
            key.previous_valid_until = wanted  # a grace period never outlives the key
        key.expires_at = wanted
    if scopes is not None:
        # Every scope listed is now held in full: a suspended one listed again was just granted.
        key.scopes, key.suspended_scopes = list(scopes), []
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
    await _audit_update(session, actor, key, before, after)
    return key


async def _audit_update(
    session: AsyncSession,
    actor: Principal,
    key: ApiKey,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    if before["name"] != after["name"]:
        await _audit(session, actor, "key.renamed", key, diff(before, after))
    if before["status"] != after["status"]:
        action = "key.activated" if key.is_active else "key.deactivated"
        await _audit(session, actor, action, key, diff(before, after))
        await emit_key_event(session, action, key, actor.actor)
    was = {k: v for k, v in before.items() if k != "status"}
    now = {k: v for k, v in after.items() if k != "status"}
    if was != now:
        await emit_key_event(session, "key.updated", key, actor.actor, {"changes": diff(was, now)})
    if before["expires_at"] != after["expires_at"]:
        await _audit(session, actor, "key.expiry_changed", key, diff(before, after))
    if (before["scopes"], before["suspended_scopes"]) != (
        after["scopes"],
        after["suspended_scopes"],
    ):
        await _audit(session, actor, "key.scopes_changed", key, diff(before, after))


async def rotate_key(
    session: AsyncSession,
    actor: Principal,
    key_id: str,
    *,
    grace_period_seconds: int,
    peppers: Peppers,
    now: datetime | None = None,
    unchanged: Callable[[ApiKey], bool] | None = None,
) -> tuple[ApiKey, str]:
    """Give a key a new secret; the old one keeps working for the grace period, then never.

    ``unchanged`` (checked under the row lock) tells whether the key is still the one the
    asker saw; if not, AlreadyRotated is raised and nothing changes (a replayed form).
    """
    actor.require(API_KEYS_WRITE)
    now = now or utcnow()
    if not 0 <= grace_period_seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(
            f"grace_period_seconds must be between 0 and {MAX_GRACE_SECONDS} (7 days)",
            field="grace_period_seconds",
        )
    # Locked, so the checks below and the change are one step: no concurrent change in between.
    key = await _load(session, key_id, for_update=True)
    if unchanged is not None and not unchanged(key):
        raise AlreadyRotated("this key was rotated since that page was shown; nothing changed")
    grants.require_may_change(actor, key, grants.Widening(rotate_grace=grace_period_seconds))
    if not key.is_active:
        raise Conflict("an inactive key cannot be rotated; activate it first or create a new key")
    if key.is_expired(now):
        raise Conflict("an expired key cannot be rotated; extend its expiry or create a new key")
    grace_until = now + timedelta(seconds=grace_period_seconds)
    if key.expires_at is not None and grace_until > key.expires_at:
        raise InvalidInput(
            "the grace period would outlast the key's expiry "
            f"({key.expires_at.isoformat()}); choose a shorter one",
            field="grace_period_seconds",
        )
    before = {"masked_key": key.masked_key, "previous_valid_until": key.previous_valid_until}
    plaintext = tokens.generate_key()
    # A rotation during a running grace period ends the older secret now: one previous at most.
    key.previous_digest = key.digest if grace_period_seconds else None
    key.previous_pepper_version = key.pepper_version if grace_period_seconds else None
    key.previous_valid_until = grace_until if grace_period_seconds else None
    key.digest = peppers.digest_current(plaintext)
    key.pepper_version = peppers.current
    key.masked_key = tokens.mask(plaintext)
    key.rotated_at = now
    await session.flush()
    await record_key_change(session, key.id)
    after = {"masked_key": key.masked_key, "previous_valid_until": key.previous_valid_until}
    await _audit(session, actor, "key.rotated", key, diff(_jsonable(before), _jsonable(after)))
    await emit_key_event(session, "key.rotated", key, actor.actor, _jsonable(after))
    return key, plaintext


async def count_expiring(
    session: AsyncSession, actor: Principal, *, within: timedelta, now: datetime | None = None
) -> int:
    """How many active keys expire between now and ``now + within``."""
    actor.require(API_KEYS_READ)
    now = now or utcnow()
    return await KeyRepository(session).count_expiring(now, now + within)


async def list_expiring_keys(
    session: AsyncSession,
    actor: Principal,
    *,
    within: timedelta,
    now: datetime | None = None,
    limit: int = 10,
) -> list[ApiKey]:
    """The active keys that expire between now and ``now + within``, soonest first."""
    actor.require(API_KEYS_READ)
    now = now or utcnow()
    return await KeyRepository(session).list_expiring(now, now + within, limit)


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
    await emit_key_event(session, "key.deleted", key, actor.actor)
    return key


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be in the future", field="expires_at")


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _audited(key: ApiKey) -> dict[str, Any]:
    """The fields of a key the audit log tracks (never the digest or the secret)."""
    return _jsonable(
        {
            "name": key.name,
            "status": key.status,
            "scopes": list(key.scopes),
            "suspended_scopes": list(key.suspended_scopes or []),
            "expires_at": key.expires_at,
        }
    )


def key_summary(key: ApiKey) -> dict[str, Any]:
    """What events tell receivers about a key (never its digest or secret)."""
    return _jsonable(
        {
            "id": key.id,
            "name": key.name,
            "masked_key": key.masked_key,
            "status": key.status,
            "scopes": list(key.scopes),
            "expires_at": key.expires_at,
            "created_at": key.created_at,
        }
    )


async def emit_key_event(
    session: AsyncSession,
    event_type: str,
    key: ApiKey,
    actor: str,
    extra: dict[str, Any] | None = None,
    *,
    dedupe: str | None = None,
    now: datetime | None = None,
) -> OutboxEvent | None:
    """Put an event about ``key`` in the outbox, in the caller's transaction (None: a
    ``dedupe`` twin was already written)."""
    data = {"key": key_summary(key), "actor": actor, **(extra or {})}
    return await emit_event(session, event_type, key_id=key.id, data=data, dedupe=dedupe, now=now)


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


async def _load(session: AsyncSession, key_id: str, *, for_update: bool = False) -> ApiKey:
    # Ids are 32 hex characters; anything else cannot exist (and PostgreSQL rejects some bytes).
    key = None
    if _ID_RE.fullmatch(key_id):
        repository = KeyRepository(session)
        get = repository.get_for_update if for_update else repository.get_by_id
        key = await get(key_id)
    if key is None:
        raise NotFound("no API key with that id")
    return key


async def lock_key(session: AsyncSession, key_id: str) -> ApiKey:
    """The key with ``key_id``, locked for a change (no permission check: callers do it)."""
    return await _load(session, key_id, for_update=True)


async def get_calling_key(session: AsyncSession, actor: Principal) -> ApiKey:
    """The key a request was made with (any valid key may read itself)."""
    if actor.kind != "key":
        raise NotFound("this request was not made with an API key")
    return await _load(session, actor.id)
