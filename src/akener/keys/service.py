"""Key operations. Each checks the caller's permission, keeps the rules and emits change events."""

from __future__ import annotations

import dataclasses
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
from akener.keys import limits as lim
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
    owner_id: str | None = None,
    rate_limits: list[lim.Window] | None = None,
    credits: lim.Credits | None = None,
    allowed_ips: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which exists nowhere else afterwards.

    A limited key creating a key must make it at least as limited, under its own owner.
    """
    actor.require(API_KEYS_WRITE)
    actor.require_can_grant(scopes)
    now = now or utcnow()
    _check_expiry(expires_at, now)
    wanted = _wanted(owner_id, rate_limits or [], credits, allowed_ips or [])
    grants.require_within(actor, await _actor_limits(session, actor), wanted)
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
    _store_limits(key, wanted, now)
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
    owner_id: str | None = None,
) -> tuple[list[ApiKey], str | None]:
    """One page of keys, filtered and sorted (newest first unless told otherwise)."""
    query = _key_query(
        actor,
        cursor=cursor,
        status=status,
        q=q,
        expiry=expiry,
        scope=scope,
        sort=sort,
        owner_id=owner_id,
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
    owner_id: str | None = None,
) -> int:
    """How many keys match these filters (no more than ``up_to`` when given)."""
    query = _key_query(actor, status=status, q=q, expiry=expiry, scope=scope, owner_id=owner_id)
    return await listing.count(session, query, now=now or utcnow(), up_to=up_to)


def _key_query(actor: Principal, **values: Any) -> listing.KeyQuery:
    actor.require(API_KEYS_READ)
    status, q = values.get("status"), values.get("q")
    if status is not None and status not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    if q and any(ord(ch) < 32 or ord(ch) == 127 for ch in q):
        # Names never hold control characters, and PostgreSQL refuses NUL in a parameter.
        raise InvalidInput("q must not contain control characters", field="q")
    owner_id = values.get("owner_id")
    if owner_id is not None:
        _check_owner_id(owner_id)
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
    owner_id: str | Unset | None = UNSET,
    rate_limits: list[lim.Window] | Unset | None = UNSET,
    credits: lim.Credits | Unset | None = UNSET,
    allowed_ips: list[str] | Unset | None = UNSET,
) -> ApiKey:
    """Switch a key on or off, rename it, set or clear its expiry, replace its scopes, and/or
    set its limits (None clears one: no owner, no windows, unlimited credits, any address).

    What gives the key more (switching it on, a later or no expiry, new scopes, looser limits)
    is granting it: see akener.keys.grants.
    """
    actor.require(API_KEYS_WRITE)
    if status is not None and status not in KeyStatus.__members__:
        raise InvalidInput("status must be ACTIVE or INACTIVE", field="status")
    now = now or utcnow()
    key = await _load(session, key_id, for_update=True)
    wanted = key.expires_at if isinstance(expires_at, Unset) else expires_at
    current = _current_limits(key, now)
    limits = _wanted(
        current.owner_id if isinstance(owner_id, Unset) else owner_id,
        list(current.windows) if isinstance(rate_limits, Unset) else rate_limits or [],
        current.credits if isinstance(credits, Unset) else credits,
        [str(n) for n in current.allowed] if isinstance(allowed_ips, Unset) else allowed_ips or [],
    )
    grants.require_may_change(
        actor,
        key,
        grants.Widening(
            reactivate=status == KeyStatus.ACTIVE.value and not key.is_active,
            extend_expiry=grants.extends_expiry(key.expires_at, wanted),
            added_scopes=grants.added_scopes(key, scopes or ()),
            loosened=tuple(lim.loosened(current, limits)),
        ),
    )
    if limits != current:
        grants.require_within(actor, await _actor_limits(session, actor), limits)
    before = _audited(key)
    if limits != current:
        _store_limits(key, limits, now, keep_credits=limits.credits == current.credits)
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
    if any(before[f] != after[f] for f in LIMIT_FIELDS):
        await _audit(session, actor, "key.limits_changed", key, diff(before, after))


LIMIT_FIELDS = ("owner_id", "rate_limits", "credits", "allowed_ips")


def _check_owner_id(owner_id: str) -> None:
    if not lim.OWNER_ID_RE.fullmatch(owner_id):
        raise InvalidInput(
            "owner_id must be 1 to 128 letters, digits, '_', '.' or '-'", field="owner_id"
        )


def _wanted(
    owner_id: str | None,
    windows: list[lim.Window],
    credits: lim.Credits | None,
    allowed_ips: list[str],
) -> lim.Limits:
    """Limits from their parts, checked here too (the CLI and the dashboard come this way)."""
    if owner_id is not None:
        _check_owner_id(owner_id)
    lim.check_windows(windows)
    if credits is not None:
        lim.check_credits(credits)
    if len(allowed_ips) > lim.MAX_ALLOWED_IPS:
        raise InvalidInput(f"at most {lim.MAX_ALLOWED_IPS} allowed address blocks", "allowed_ips")
    try:
        allowed = tuple(dict.fromkeys(lim.parse_network(v) for v in allowed_ips))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="allowed_ips") from None
    return lim.Limits(tuple(windows), credits, allowed, owner_id)


def _current_limits(key: ApiKey, now: datetime) -> lim.Limits:
    """The key's limits with any refill that is due applied to its credits."""
    limits = key.limits()
    if limits.credits is None:
        return limits
    c = limits.credits
    remaining, _ = lim.refilled(
        c.remaining, c.refill_amount, c.refill_interval, key.credits_refilled_at, now
    )
    return dataclasses.replace(limits, credits=dataclasses.replace(c, remaining=remaining))


def _store_limits(
    key: ApiKey, limits: lim.Limits, now: datetime, keep_credits: bool = False
) -> None:
    key.owner_id = limits.owner_id
    key.rate_limits = [w.as_json() for w in limits.windows]
    key.allowed_ips = [str(n) for n in limits.allowed]
    if keep_credits:
        return
    lim.store_credits(key, limits.credits, now)


async def _actor_limits(session: AsyncSession, actor: Principal) -> lim.Limits | None:
    """The acting key's own limits (None for a person or the CLI)."""
    if actor.kind != "key":
        return None
    row = await KeyRepository(session).get_by_id(actor.id)
    return None if row is None else _current_limits(row, utcnow())


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
            "owner_id": key.owner_id,
            "rate_limits": list(key.rate_limits or []),
            "credits": None
            if key.credits_remaining is None
            else {
                "remaining": key.credits_remaining,
                "refill_amount": key.credits_refill_amount,
                "refill_interval": key.credits_refill_interval,
            },
            "allowed_ips": list(key.allowed_ips or []),
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
