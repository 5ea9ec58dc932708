"""A key's requests per day, accepted and refused by reason, as the dashboard's chart shows
them (the verifier counts them)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import Principal
from akener.errors import InvalidInput
from akener.keys.repository import KeyRepository
from akener.keys.service import get_key

MAX_DAYS = 366


async def usage_by_day(
    session: AsyncSession, actor: Principal, key_id: str, *, days: int = 30, today: date
) -> list[tuple[date, int]]:
    """``days`` (day, requests) pairs ending with ``today``, oldest first, unused days as 0."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", field="days")
    key = await get_key(session, actor, key_id)  # checks api_keys.read; NotFound otherwise
    first = today - timedelta(days=days - 1)
    counted = await KeyRepository(session).usage_between(key.id, first, today)
    every_day = (first + timedelta(days=offset) for offset in range(days))
    return [(day, counted.get(day, 0)) for day in every_day]


async def refused_by_day(
    session: AsyncSession, actor: Principal, key_id: str, *, days: int = 30, today: date
) -> list[dict[str, int]]:
    """``days`` dicts (reason -> refused requests) ending with ``today``, oldest first."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", field="days")
    key = await get_key(session, actor, key_id)  # checks api_keys.read; NotFound otherwise
    first = today - timedelta(days=days - 1)
    found = await KeyRepository(session).refusals_between(key.id, first, today)
    return [found.get(first + timedelta(days=offset), {}) for offset in range(days)]
