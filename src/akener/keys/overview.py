"""Traffic and upkeep across all keys: what the dashboard's overview page shows.

Every function needs ``api_keys.read``, as the keys list does. Requests are the accepted ones
the verifier counts per key and day (``key_usage``), refused ones per key, day and reason
(``key_refusals``); a deleted key's days go with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import API_KEYS_READ, Principal
from akener.errors import InvalidInput
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.repository import KeyRepository
from akener.verify.models import KeyUsage

MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class KeyTraffic:
    """One key and its accepted requests over a span of days."""

    key: ApiKey
    requests: int


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", field="days")


async def traffic_by_day(
    session: AsyncSession, actor: Principal, *, days: int, today: date
) -> list[tuple[date, int]]:
    """Accepted requests of all keys per day, ``days`` days ending ``today``, oldest first."""
    actor.require(API_KEYS_READ)
    _check_days(days)
    await _custom_plans(session)
    first = today - timedelta(days=days - 1)
    stmt = (
        select(KeyUsage.day, func.sum(KeyUsage.count))
        .where(KeyUsage.day >= first, KeyUsage.day <= today)
        .group_by(KeyUsage.day)
    )
    counted = {day: int(total) for day, total in (await session.execute(stmt)).all()}
    every_day = (first + timedelta(days=offset) for offset in range(days))
    return [(day, counted.get(day, 0)) for day in every_day]


async def refused_by_day(
    session: AsyncSession, actor: Principal, *, days: int, today: date
) -> list[dict[str, int]]:
    """Refused requests of all keys per day and reason (``key_refusals``), ``days`` days ending
    ``today``, oldest first."""
    actor.require(API_KEYS_READ)
    _check_days(days)
    first = today - timedelta(days=days - 1)
    found = await KeyRepository(session).refusals_between(None, first, today)
    return [found.get(first + timedelta(days=offset), {}) for offset in range(days)]


async def busiest_keys(
    session: AsyncSession, actor: Principal, *, days: int, today: date, limit: int = 10
) -> list[KeyTraffic]:
    """The keys with the most accepted requests in the last ``days`` days, busiest first."""
    actor.require(API_KEYS_READ)
    _check_days(days)
    await _custom_plans(session)
    total = func.sum(KeyUsage.count).label("total")
    totals = (
        select(KeyUsage.key_id, total)
        .where(KeyUsage.day >= today - timedelta(days=days - 1), KeyUsage.day <= today)
        .group_by(KeyUsage.key_id)
        .cte("totals")
    )
    # Only keys at least as busy as the limit-th busiest can rank (ties included, so the order
    # by name stays exact): a handful of primary-key lookups instead of joining every key.
    cut = select(totals.c.total).order_by(totals.c.total.desc()).offset(limit - 1).limit(1)
    stmt = (
        select(ApiKey, totals.c.total)
        .join(totals, totals.c.key_id == ApiKey.id)
        .where(totals.c.total >= func.coalesce(cut.scalar_subquery(), 0))
        .order_by(totals.c.total.desc(), ApiKey.name)
        .limit(limit)
    )
    return [KeyTraffic(key, int(n)) for key, n in (await session.execute(stmt)).all()]


def _never_used_since(cutoff: datetime) -> ColumnElement[bool]:
    # Never used, and not created since the cutoff: a key made yesterday is not yet a
    # candidate for deactivation.
    return and_(ApiKey.last_used_at.is_(None), ApiKey.created_at < cutoff)


@dataclass(frozen=True, slots=True)
class Upkeep:
    """The keys that need care: unused ones (longest unused first) and expiring ones."""

    unused: list[ApiKey]
    unused_count: int
    expiring: list[ApiKey]
    expiring_count: int


async def upkeep(
    session: AsyncSession,
    actor: Principal,
    *,
    unused_days: int,
    expiring_within: timedelta,
    now: datetime,
    limit: int = 20,
) -> Upkeep:
    """Active keys not used in ``unused_days`` days and active keys expiring within
    ``expiring_within``, with how many of each there are.

    Every key is read once for the three counts, then only the rows shown are fetched, each
    list by the cheapest path its count allows (docs/dashboard.md, bench/dashboard_pages.py).
    """
    actor.require(API_KEYS_READ)
    _check_days(unused_days)
    await _custom_plans(session)
    cutoff = now - timedelta(days=unused_days)
    never = _never_used_since(cutoff)
    expiring = and_(ApiKey.expires_at >= now, ApiKey.expires_at < now + expiring_within)
    counted = (
        await session.execute(
            select(
                func.count().filter(or_(never, ApiKey.last_used_at < cutoff)),
                func.count().filter(never),
                func.count().filter(expiring),
            ).where(ApiKey.status == KeyStatus.ACTIVE.value)
        )
    ).one()
    unused_count, never_count, expiring_count = (int(n) for n in counted)
    unused: list[ApiKey] = []
    if never_count:  # never used: oldest first, along the created_at index
        stmt = select(ApiKey).where(ApiKey.status == KeyStatus.ACTIVE.value, never)
        unused += await _rows(session, stmt.order_by(ApiKey.created_at, ApiKey.id), limit)
    if unused_count > never_count and len(unused) < limit:  # then the longest unused
        stmt = select(ApiKey).where(
            ApiKey.status == KeyStatus.ACTIVE.value, ApiKey.last_used_at < cutoff
        )
        stmt = stmt.order_by(ApiKey.last_used_at, ApiKey.created_at, ApiKey.id)
        unused += await _rows(session, stmt, limit - len(unused))
    soon: list[ApiKey] = []
    if expiring_count:
        stmt = select(ApiKey).where(ApiKey.status == KeyStatus.ACTIVE.value, expiring)
        soon = await _rows(session, stmt.order_by(ApiKey.expires_at, ApiKey.id), limit)
    return Upkeep(unused, unused_count, soon, expiring_count)


async def _rows(session: AsyncSession, stmt: Select[Any], limit: int) -> list[ApiKey]:
    return list((await session.execute(stmt.limit(limit))).scalars())


async def _custom_plans(session: AsyncSession) -> None:
    """Plan this transaction's statements for their actual dates (PostgreSQL).

    asyncpg prepares every statement, and after five runs PostgreSQL may switch to a generic
    plan that guesses a date range matches a few rows: the 90-day sum then walks the index
    row by row instead of reading the table (EXPLAIN ANALYZE with 100,000 keys: 160 ms
    against 105 ms). SET LOCAL ends with the transaction, so pooled connections (and
    PgBouncer in transaction mode) keep their defaults.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
