"""Traffic and upkeep across all keys: what the dashboard's overview page shows.

Every function needs ``api_keys.read``, as the keys list does. Requests are the accepted ones
the verifier counts per key and day (``key_usage``), refused ones per key, day and reason
(``key_refusals``); a deleted key's days go with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
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
    total = func.sum(KeyUsage.count).label("total")
    ranked = (
        select(KeyUsage.key_id, total)
        .where(KeyUsage.day >= today - timedelta(days=days - 1), KeyUsage.day <= today)
        .group_by(KeyUsage.key_id)
        .subquery()
    )
    stmt = (
        select(ApiKey, ranked.c.total)
        .join(ranked, ranked.c.key_id == ApiKey.id)
        .order_by(ranked.c.total.desc(), ApiKey.name)
        .limit(limit)
    )
    return [KeyTraffic(key, int(n)) for key, n in (await session.execute(stmt)).all()]


def _unused_since(cutoff: datetime):  # type: ignore[no-untyped-def]
    # Switched on, and neither used nor created since the cutoff: a key made yesterday is not
    # yet a candidate for deactivation.
    return and_(
        ApiKey.status == KeyStatus.ACTIVE.value,
        or_(
            ApiKey.last_used_at < cutoff,
            and_(ApiKey.last_used_at.is_(None), ApiKey.created_at < cutoff),
        ),
    )


async def unused_keys(
    session: AsyncSession, actor: Principal, *, days: int, now: datetime, limit: int = 20
) -> tuple[list[ApiKey], int]:
    """Active keys not used in ``days`` days (longest unused first), and how many there are."""
    actor.require(API_KEYS_READ)
    _check_days(days)
    where = _unused_since(now - timedelta(days=days))
    count = int(
        (await session.execute(select(func.count()).select_from(ApiKey).where(where))).scalar_one()
    )
    stmt = (
        select(ApiKey)
        .where(where)
        .order_by(ApiKey.last_used_at.is_not(None), ApiKey.last_used_at, ApiKey.created_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars()), count
