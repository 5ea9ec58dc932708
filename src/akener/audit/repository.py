"""Statements on audit_events: insert and select only; nothing in akener updates or deletes them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, func, or_, select
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

    async def last_names(self, target_type: str, target_ids: Iterable[str]) -> dict[str, str]:
        """The most recent name the log recorded for each of these objects (deleted ones too)."""
        newest = (
            select(func.max(AuditEvent.id))
            .where(
                AuditEvent.target_type == target_type,
                AuditEvent.target_id.in_(list(target_ids)),
                AuditEvent.target_name.is_not(None),
            )
            .group_by(AuditEvent.target_id)
        )
        stmt = select(AuditEvent.target_id, AuditEvent.target_name).where(AuditEvent.id.in_(newest))
        return {str(i): str(n) for i, n in (await self.session.execute(stmt)).all()}

    async def target_id_by_name(self, target_type: str, name: str) -> str | None:
        """The id of the newest object of that type the log recorded under ``name``."""
        stmt = (
            select(AuditEvent.target_id)
            .where(
                AuditEvent.target_type == target_type,
                AuditEvent.target_name == name,
                AuditEvent.target_id.is_not(None),
            )
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt)
