"""Shapes of audit events going out, and the filters that select them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from akener.errors import InvalidInput
from akener.instants import has_control, parse_instant


class AuditEventRead(BaseModel):
    """One audit event as the API, the dashboard and the exports show it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    target_name: str | None
    client: str | None
    changes: dict[str, Any] | None


class AuditPage(BaseModel):
    """One page of audit events, newest first."""

    items: list[AuditEventRead]
    next_cursor: str | None


def parse_time(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC when no zone is given); InvalidInput otherwise."""
    if value is None or value == "":
        return None
    return parse_instant(value, field)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What to select: each field narrows the result; None means any."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None  # an object's id, or its type ("key", "user", "role")
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AuditFilters:
        """Build filters from text input (query string, form, CLI options)."""
        for name, value in (("actor", actor), ("action", action), ("target", target)):
            # PostgreSQL refuses NUL in text parameters; no id, action or name has controls.
            if value and has_control(value):
                raise InvalidInput(f"{name} must not contain control characters", field=name)
        start, end = parse_time(since, "since"), parse_time(until, "until")
        if start and end and start > end:
            raise InvalidInput("since must not be after until", field="since")
        return cls(actor or None, action or None, target or None, start, end)
