"""Owners: an external id grouping keys, with rate limits and credits shared by all its keys.

An owner exists once it has a key or shared limits. Loosening an owner's shared limits is a
grant (akener.keys.grants): it needs every scope held by the owner's keys, and no key that is
itself limited may do it.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import API_KEYS_READ, API_KEYS_WRITE, Principal, describe_scope
from akener.audit.service import diff, record_event
from akener.db.base import utcnow
from akener.errors import InvalidInput, NotFound, PermissionDenied
from akener.keys import limits as lim
from akener.keys.events import record_key_change
from akener.keys.models import ApiKey, Owner
from akener.keys.repository import KeyRepository
from akener.verify.models import KeyUsage

MAX_OWNERS_PAGE = 1000
MAX_PAGE = 100  # owners per page of the API's list


def encode_owner_cursor(owner_id: str) -> str:
    """An opaque cursor pointing just after ``owner_id`` in the list's order."""
    return base64.urlsafe_b64encode(owner_id.encode()).decode().rstrip("=")


def decode_owner_cursor(cursor: str) -> str:
    """Inverse of encode_owner_cursor; InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc
    # The id goes to the database as text: only what an owner id may hold (no NUL).
    if not lim.OWNER_ID_RE.fullmatch(raw):
        raise InvalidInput("invalid cursor", field="cursor")
    return raw


def _check(owner_id: str) -> None:
    if not lim.OWNER_ID_RE.fullmatch(owner_id):
        raise InvalidInput(
            "owner_id must be 1 to 128 letters, digits, '_', '.' or '-'", field="owner_id"
        )


async def _key_count(session: AsyncSession, owner_id: str) -> int:
    stmt = select(func.count()).where(ApiKey.owner_id == owner_id)
    return int((await session.execute(stmt)).scalar_one())


async def get_owner(session: AsyncSession, actor: Principal, owner_id: str) -> Owner:
    """The owner's shared limits and key count; NotFound when it has neither."""
    actor.require(API_KEYS_READ)
    _check(owner_id)
    row = await session.get(Owner, owner_id)
    count = await _key_count(session, owner_id)
    if row is None and count == 0:
        raise NotFound("no owner with that id (it has no keys and no shared limits)")
    row = row or Owner(owner_id=owner_id, rate_limits=[])
    row.key_count = count
    return row


async def list_owners(session: AsyncSession, actor: Principal) -> list[Owner]:
    """Every owner (with keys or shared limits), by id, with its key count."""
    actor.require(API_KEYS_READ)
    stmt = (
        select(ApiKey.owner_id, func.count())
        .where(ApiKey.owner_id.is_not(None))
        .group_by(ApiKey.owner_id)
    )
    counts = {str(k): int(v) for k, v in (await session.execute(stmt)).all()}
    rows = {o.owner_id: o for o in (await session.execute(select(Owner))).scalars()}
    found = []
    for owner_id in sorted(set(counts) | set(rows))[:MAX_OWNERS_PAGE]:
        row = rows.get(owner_id) or Owner(owner_id=owner_id, rate_limits=[])
        row.key_count = int(counts.get(owner_id, 0))
        found.append(row)
    return found


async def page_owners(
    session: AsyncSession, actor: Principal, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[Owner], str | None]:
    """One page of owners (with keys or shared limits) ordered by id, each with its key count,
    and the cursor of the next page (None on the last)."""
    actor.require(API_KEYS_READ)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    after = decode_owner_cursor(cursor) if cursor is not None else None
    with_keys = select(ApiKey.owner_id.label("owner_id")).where(ApiKey.owner_id.is_not(None))
    ids = union(with_keys, select(Owner.owner_id.label("owner_id"))).subquery()
    stmt = select(ids.c.owner_id).order_by(ids.c.owner_id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(ids.c.owner_id > after)
    page = [str(v) for v in (await session.execute(stmt)).scalars()]
    more, page = len(page) > limit, page[:limit]
    counts_stmt = (
        select(ApiKey.owner_id, func.count())
        .where(ApiKey.owner_id.in_(page))
        .group_by(ApiKey.owner_id)
    )
    counts = {str(k): int(v) for k, v in (await session.execute(counts_stmt)).all()}
    rows_stmt = select(Owner).where(Owner.owner_id.in_(page))
    rows = {o.owner_id: o for o in (await session.execute(rows_stmt)).scalars()}
    found = []
    for owner_id in page:
        row = rows.get(owner_id) or Owner(owner_id=owner_id, rate_limits=[])
        row.key_count = counts.get(owner_id, 0)
        found.append(row)
    return found, encode_owner_cursor(page[-1]) if more and page else None


async def set_owner(
    session: AsyncSession,
    actor: Principal,
    owner_id: str,
    *,
    rate_limits: list[lim.Window],
    credits: lim.Credits | None,
    now: datetime | None = None,
) -> Owner:
    """Replace an owner's shared limits (creating the owner if needed)."""
    actor.require(API_KEYS_WRITE)
    _check(owner_id)
    lim.check_windows(rate_limits)
    if credits is not None:
        lim.check_credits(credits)
    now = now or utcnow()
    row = await session.get(Owner, owner_id, with_for_update=True)
    current = lim.Limits() if row is None else _current(row, now)
    wanted = lim.Limits(windows=tuple(rate_limits), credits=credits)
    loosened = lim.loosened(current, wanted)
    if loosened:
        await _require_may_loosen(session, actor, owner_id, loosened[0])
    if row is None:
        row = Owner(owner_id=owner_id, created_at=now)
        session.add(row)
    before = _audited(row)
    row.rate_limits = [w.as_json() for w in rate_limits]
    if credits != current.credits:
        lim.store_credits(row, credits, now)
    row.updated_at = now
    await session.flush()
    key_ids = (
        await session.execute(select(ApiKey.id).where(ApiKey.owner_id == owner_id))
    ).scalars()
    for key_id in key_ids:
        await record_key_change(session, key_id)
    changes = diff(before, _audited(row))
    if changes:
        await record_event(
            session,
            actor,
            "owner.limits_changed",
            target_type="owner",
            target_id=owner_id,
            target_name=owner_id,
            changes=changes,
        )
    row.key_count = await _key_count(session, owner_id)
    return row


def _current(row: Owner, now: datetime) -> lim.Limits:
    limits = row.limits()
    c = limits.credits
    if c is None:
        return limits
    remaining, _ = lim.refilled(
        c.remaining, c.refill_amount, c.refill_interval, row.credits_refilled_at, now
    )
    return lim.Limits(limits.windows, lim.Credits(remaining, c.refill_amount, c.refill_interval))


async def _require_may_loosen(
    session: AsyncSession, actor: Principal, owner_id: str, what: str
) -> None:
    if actor.is_trusted:
        return
    if actor.kind == "key":
        own = await KeyRepository(session).get_by_id(actor.id)
        if own is not None and own.limits().limited:
            raise PermissionDenied(f"a limited key cannot loosen an owner's limits ({what})")
    rows = (await session.execute(select(ApiKey).where(ApiKey.owner_id == owner_id))).scalars()
    held: set[str] = set()
    for key in rows:
        held |= key.effective_scopes
    missing = actor.missing_grants(held)
    if missing:
        raise PermissionDenied(
            "loosening an owner's shared limits needs every scope its keys hold, and you lack: "
            + ", ".join(describe_scope(s) for s in missing)
        )


def _audited(row: Owner) -> dict[str, Any]:
    return {
        "rate_limits": list(row.rate_limits or []),
        "credits": None
        if row.credits_remaining is None
        else {
            "remaining": row.credits_remaining,
            "refill_amount": row.credits_refill_amount,
            "refill_interval": row.credits_refill_interval,
        },
    }


async def owner_overview(
    session: AsyncSession, actor: Principal, *, since: date
) -> list[tuple[Owner, list[ApiKey], int]]:
    """Every owner with its keys and its requests since ``since`` (the Owners page)."""
    owners = await list_owners(session, actor)
    ids = [o.owner_id for o in owners]
    stmt = select(ApiKey).where(ApiKey.owner_id.in_(ids)).order_by(ApiKey.name)
    keys_by_owner: dict[str, list[ApiKey]] = {}
    for key in (await session.execute(stmt)).scalars():
        keys_by_owner.setdefault(str(key.owner_id), []).append(key)
    traffic_stmt = (
        select(ApiKey.owner_id, func.sum(KeyUsage.count))
        .join(KeyUsage, KeyUsage.key_id == ApiKey.id)
        .where(ApiKey.owner_id.in_(ids), KeyUsage.day >= since)
        .group_by(ApiKey.owner_id)
    )
    traffic = {str(k): int(v or 0) for k, v in (await session.execute(traffic_stmt)).all()}
    return [(o, keys_by_owner.get(o.owner_id, []), traffic.get(o.owner_id, 0)) for o in owners]
