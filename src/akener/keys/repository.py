"""Statements on api_keys. Repositories may flush, never commit."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from akener.errors import InvalidInput
from akener.instants import in_range_utc
from akener.keys.models import ApiKey
from akener.verify.models import KeyRefusal, KeyUsage

_CURSOR_ID_RE = re.compile(r"[0-9a-f]{32}")


def encode_cursor(key: ApiKey) -> str:
    """An opaque cursor pointing just after ``key`` in newest-first order."""
    raw = f"{key.created_at.isoformat()}|{key.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of encode_cursor; a clear error for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, key_id = raw.split("|", 1)
        parsed = datetime.fromisoformat(stamp)
        when = in_range_utc(parsed)  # refuses what leaves the calendar in UTC
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc
    # The id goes to the database as text: PostgreSQL refuses a NUL in it.
    if parsed.tzinfo is None or not _CURSOR_ID_RE.fullmatch(key_id):
        raise InvalidInput("invalid cursor", field="cursor")
    return when, key_id


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class KeyRepository:
    """Reads and writes api_keys rows inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        """Insert a key and flush so constraint errors surface here."""
        self.session.add(key)
        await self.session.flush()
        return key

    async def get_by_id(self, key_id: str) -> ApiKey | None:
        """The key with that id, or None."""
        return await self.session.get(ApiKey, key_id)

    async def get_for_update(self, key_id: str) -> ApiKey | None:
        """The key with that id, its row locked until the transaction ends (PostgreSQL).

        SQLite needs no row lock: a writing transaction there holds the database's write lock.
        """
        stmt = (
            select(ApiKey)
            .where(ApiKey.id == key_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def get_by_ids(self, key_ids: Sequence[str]) -> list[ApiKey]:
        """The keys with these ids (unknown ids are simply absent)."""
        stmt = select(ApiKey).where(ApiKey.id.in_([i for i in key_ids if len(i) <= 32]))
        return list((await self.session.execute(stmt)).scalars())

    async def get_by_digests(self, digests: Sequence[str]) -> ApiKey | None:
        """The key whose current or previous digest is in ``digests`` (one per pepper version)."""
        stmt = select(ApiKey).where(
            or_(ApiKey.digest.in_(digests), ApiKey.previous_digest.in_(digests))
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def replace_digest(
        self, key_id: str, column: str, *, old: str, new: str, version: int
    ) -> bool:
        """Store ``new`` (made with pepper ``version``) in place of ``old`` in ``column``
        (``digest`` or ``previous_digest``); False when ``old`` is no longer stored there."""
        if column == "digest":
            matches, values = ApiKey.digest == old, {"digest": new, "pepper_version": version}
        elif column == "previous_digest":
            matches = ApiKey.previous_digest == old
            values = {"previous_digest": new, "previous_pepper_version": version}
        else:
            raise ValueError(column)
        stmt = update(ApiKey).where(ApiKey.id == key_id, matches).values(**values)
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))

    async def list_page(
        self,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        q: str | None,
        owner_id: str | None = None,
    ) -> tuple[list[ApiKey], str | None]:
        """Keys newest first, filtered, one page plus the cursor of the next page."""
        stmt = select(ApiKey)
        if owner_id is not None:
            stmt = stmt.where(ApiKey.owner_id == owner_id)
        if status is not None:
            stmt = stmt.where(ApiKey.status == status)
        if q:
            stmt = stmt.where(
                func.lower(ApiKey.name).like(f"%{_escape_like(q.lower())}%", escape="\\")
            )
        if cursor is not None:
            when, key_id = decode_cursor(cursor)
            stmt = stmt.where(
                or_(ApiKey.created_at < when, and_(ApiKey.created_at == when, ApiKey.id < key_id))
            )
        stmt = stmt.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(limit + 1)
        rows = list((await self.session.execute(stmt)).scalars())
        if len(rows) > limit:
            return rows[:limit], encode_cursor(rows[limit - 1])
        return rows, None

    async def count_expiring(self, start: datetime, end: datetime) -> int:
        """Active keys whose expiry falls in [start, end)."""
        stmt = select(func.count()).where(
            ApiKey.status == "ACTIVE", ApiKey.expires_at >= start, ApiKey.expires_at < end
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def list_expiring(self, start: datetime, end: datetime, limit: int) -> list[ApiKey]:
        """Active keys whose expiry falls in [start, end), soonest first."""
        stmt = (
            select(ApiKey)
            .where(ApiKey.status == "ACTIVE", ApiKey.expires_at >= start, ApiKey.expires_at < end)
            .order_by(ApiKey.expires_at, ApiKey.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def usage_between(self, key_id: str, first: date, last: date) -> dict[date, int]:
        """The key's request count for each day in [first, last] that has one."""
        stmt = select(KeyUsage.day, KeyUsage.count).where(
            KeyUsage.key_id == key_id, KeyUsage.day >= first, KeyUsage.day <= last
        )
        return {day: int(count) for day, count in (await self.session.execute(stmt)).all()}

    async def refusals_between(
        self, key_id: str | None, first: date, last: date
    ) -> dict[date, dict[str, int]]:
        """Refused requests per day in [first, last] and reason: one key's, or (``key_id``
        None) every key's."""
        stmt = (
            select(KeyRefusal.day, KeyRefusal.reason, func.sum(KeyRefusal.count))
            .where(KeyRefusal.day >= first, KeyRefusal.day <= last)
            .group_by(KeyRefusal.day, KeyRefusal.reason)
        )
        if key_id is not None:
            stmt = stmt.where(KeyRefusal.key_id == key_id)
        found: dict[date, dict[str, int]] = {}
        for day, reason, count in (await self.session.execute(stmt)).all():
            found.setdefault(day, {})[reason] = int(count)
        return found

    async def delete(self, key: ApiKey) -> None:
        """Remove the row for good."""
        await self.session.execute(delete(ApiKey).where(ApiKey.id == key.id))
