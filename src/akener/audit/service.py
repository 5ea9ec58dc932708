"""Recording and reading the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import AUDIT_READ, Principal
from akener.audit.models import AuditEvent
from akener.audit.repository import AuditRepository
from akener.audit.schemas import AuditFilters
from akener.errors import InvalidInput
from akener.instants import ascii_int

MAX_PAGE = 200


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before", "after"}}`` for each field whose value differs."""
    return {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


async def record_event(
    session: AsyncSession,
    actor: Principal | str,
    action: str,
    *,
    target_type: str,
    target_id: str | None = None,
    target_name: str | None = None,
    changes: dict[str, Any] | None = None,
    client: str | None = None,
) -> AuditEvent:
    """Append one event to the log, in the caller's transaction (so it commits with the change)."""
    if isinstance(actor, Principal):
        client = client or actor.client
        actor = actor.actor
    event = AuditEvent(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_name=target_name,
        client=client,
        changes=changes or None,
    )
    return await AuditRepository(session).add(event)


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    before_id = ascii_int(cursor, max_digits=18)
    if before_id is None:
        raise InvalidInput("invalid cursor", field="cursor")
    return before_id


async def list_events(
    session: AsyncSession,
    actor: Principal,
    filters: AuditFilters,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """One page of events newest first, and the cursor of the next page."""
    actor.require(AUDIT_READ)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    rows = await AuditRepository(session).list_page(
        filters, limit=limit, before_id=_decode_cursor(cursor)
    )
    if len(rows) > limit:
        return rows[:limit], str(rows[limit - 1].id)
    return rows, None


async def iter_events(
    session: AsyncSession, actor: Principal, filters: AuditFilters
) -> AsyncIterator[AuditEvent]:
    """Every matching event, newest first, read in pages (for exports)."""
    cursor: str | None = None
    while True:
        rows, cursor = await list_events(session, actor, filters, limit=MAX_PAGE, cursor=cursor)
        for row in rows:
            yield row
        if cursor is None:
            return
