"""The keys list: search, filters, sorts and keyset pages that stay fast at 100,000 keys.

A page is found by a keyset condition (the row after the cursor's, in the chosen order), never
by OFFSET, so the last page costs what the first does. The cursor of the default order
(newest first) keeps the format of ``repository.encode_cursor``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from akener.errors import InvalidInput
from akener.instants import in_range_utc
from akener.keys.models import ApiKey
from akener.keys.repository import _CURSOR_ID_RE, _escape_like, decode_cursor, encode_cursor
from akener.keys.schemas import SCOPE_RE

EXPIRING_WINDOW = timedelta(days=7)
EXPIRY_FILTERS = ("expired", "expiring", "never")
# sort value -> (column, descending); "-" means descending, as in ?sort=-last_used.
SORTS: dict[str, tuple[Any, bool]] = {
    "-created": (ApiKey.created_at, True),
    "created": (ApiKey.created_at, False),
    "name": (ApiKey.name, False),
    "-name": (ApiKey.name, True),
    "-last_used": (ApiKey.last_used_at, True),
    "last_used": (ApiKey.last_used_at, False),
}
DEFAULT_SORT = "-created"


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """What the list shows: filters, order, and the page after ``cursor``."""

    q: str | None = None
    status: str | None = None
    expiry: str | None = None
    scope: str | None = None
    sort: str = DEFAULT_SORT
    cursor: str | None = None
    owner_id: str | None = None  # only this owner's keys (docs/limits.md)

    def check(self) -> None:
        """InvalidInput naming the field for anything the list cannot take."""
        if self.expiry is not None and self.expiry not in EXPIRY_FILTERS:
            raise InvalidInput("expiry must be expired, expiring or never", field="expiry")
        if self.scope is not None and not SCOPE_RE.fullmatch(self.scope):
            raise InvalidInput("scope is not a valid scope name", field="scope")
        if self.sort not in SORTS:
            names = ", ".join(SORTS)
            raise InvalidInput(f"sort must be one of {names}", field="sort")


def _filters(query: KeyQuery, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.owner_id is not None:
        where.append(ApiKey.owner_id == query.owner_id)
    if query.status is not None:
        where.append(ApiKey.status == query.status)
    if query.q:
        pattern = f"%{_escape_like(query.q.lower())}%"
        where.append(func.lower(ApiKey.name).like(pattern, escape="\\"))
    if query.expiry == "expired":
        where.append(ApiKey.expires_at <= now)
    elif query.expiry == "expiring":
        where.append(and_(ApiKey.expires_at > now, ApiKey.expires_at <= now + EXPIRING_WINDOW))
    elif query.expiry == "never":
        where.append(ApiKey.expires_at.is_(None))
    if query.scope:
        # Scopes are a JSON list of names from a small alphabet without quotes, so the quoted
        # name in the stored text matches exactly one element, the same on SQLite and PostgreSQL.
        text = cast(ApiKey.scopes, String)
        where.append(text.like(f'%"{_escape_like(query.scope)}"%', escape="\\"))
    return where


def _encode(sort: str, key: ApiKey) -> str:
    if sort == DEFAULT_SORT:
        return encode_cursor(key)
    column, _ = SORTS[sort]
    value = getattr(key, column.key)
    shown = value.isoformat() if isinstance(value, datetime) else (value or "")
    raw = f"{sort}|{shown}|{key.id}".encode()
    return "s" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(sort: str, cursor: str) -> tuple[Any, str]:
    if sort == DEFAULT_SORT:
        return decode_cursor(cursor)
    try:
        if not cursor.startswith("s"):
            raise ValueError(cursor)
        body = cursor[1:]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        named, rest = raw.split("|", 1)
        shown, key_id = rest.rsplit("|", 1)
        if named != sort or not _CURSOR_ID_RE.fullmatch(key_id):
            raise ValueError(cursor)
        column, _ = SORTS[sort]
        if column is ApiKey.name:
            return shown, key_id
        return (in_range_utc(datetime.fromisoformat(shown)) if shown else None), key_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("invalid cursor", field="cursor") from exc


def _after(sort: str, value: Any, key_id: str) -> ColumnElement[bool]:
    """Rows after (value, key_id) in the order of ``sort``; never-used keys come last."""
    column, descending = SORTS[sort]
    next_id = ApiKey.id < key_id if descending else ApiKey.id > key_id
    if value is None:  # only last_used is ever empty: the never-used keys, at the end
        return and_(column.is_(None), next_id)
    beyond = column < value if descending else column > value
    if column is not ApiKey.last_used_at:
        return or_(beyond, and_(column == value, next_id))
    return or_(beyond, and_(column == value, next_id), column.is_(None))


def _order(sort: str) -> list[Any]:
    column, descending = SORTS[sort]
    order = [column.desc() if descending else column.asc()]
    if column is ApiKey.last_used_at:
        order.insert(0, column.is_(None))  # never used: last in both directions
    return [*order, ApiKey.id.desc() if descending else ApiKey.id.asc()]


async def list_page(
    session: AsyncSession, query: KeyQuery, *, limit: int, now: datetime
) -> tuple[list[ApiKey], str | None]:
    """One page of keys in the query's order, and the cursor of the next page."""
    stmt = select(ApiKey).where(*_filters(query, now))
    if query.cursor:
        stmt = stmt.where(_after(query.sort, *_decode(query.sort, query.cursor)))
    stmt = stmt.order_by(*_order(query.sort)).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    if len(rows) > limit:
        return rows[:limit], _encode(query.sort, rows[limit - 1])
    return rows, None


async def count(
    session: AsyncSession, query: KeyQuery, *, now: datetime, up_to: int | None = None
) -> int:
    """How many keys match the query's filters (all pages), counting no further than ``up_to``.

    A bounded count stops reading rows once it has seen ``up_to`` of them, so a page that says
    "10,000+ keys" costs the same at 100,000 keys as at 10,000.
    """
    matching = select(ApiKey.id).where(*_filters(query, now))
    if up_to is not None:
        matching = matching.limit(up_to)
    stmt = select(func.count()).select_from(matching.subquery())
    return int((await session.execute(stmt)).scalar_one())
