"""Statements on audit_events: insert and select only; nothing in akener updates or deletes them."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.audit.models import AuditEvent
from akener.audit.schemas import AuditFilters


class AuditRepository:
    """Appends and reads audit events inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> AuditEvent:
        """Append one event."""
        self.session.add(event)
        await self.session.flush()
        return event

    def _select(self, filters: AuditFilters) -> Select[AuditEvent]:
        stmt = select(AuditEvent)
        if filters.actor:
            stmt = stmt.where(AuditEvent.actor == filters.actor)
        if filters.action:
            stmt = stmt.where(AuditEvent.action == filters.action)
        if filters.target:
            stmt = stmt.where(
                or_(
                    AuditEvent.target_id == filters.target, AuditEvent.target_type == filters.target
                )
            )
        if filters.since:
            stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
        if filters.until:
            stmt = stmt.where(AuditEvent.occurred_at <= filters.until)
        return stmt

    async def list_page(
        self, filters: AuditFilters, *, limit: int, before_id: int | None
    ) -> list[AuditEvent]:
        """Up to ``limit`` + 1 events newest first, older than ``before_id`` when given."""
        stmt = self._select(filters)
        if before_id is not None:
            stmt = stmt.where(AuditEvent.id < before_id)
        stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)
        return list((await self.session.execute(stmt)).scalars())
