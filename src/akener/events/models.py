"""The outbox of events, webhook endpoints, their deliveries and the sender's lease.

``events`` is an ordered change log: ids only grow, each row is written in the transaction that
made the change (so it exists if and only if the change committed). Readers (the webhook sender,
a later change stream) remember the last id they handled.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from akener.db.base import Base, UTCDateTime, utcnow

# SQLite gives only INTEGER PRIMARY KEY a growing rowid; PostgreSQL gets a 64-bit identity.
EventId = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    """An opaque random identifier."""
    return uuid.uuid4().hex


class OutboxEvent(Base):
    """Something that happened to a key, in commit order (ids grow)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_occurred_at", "occurred_at"),)

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    key_id: Mapped[str | None] = mapped_column(String(32))
    # {"type", "timestamp", "data"}: what receivers get; never a secret or a digest.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set for events that must be sent once only (an expiry warning, a refused key's hour).
    dedupe: Mapped[str | None] = mapped_column(String(200), unique=True)


class WebhookEndpoint(Base):
    """An address that receives signed events."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The signing secret sealed with a key derived from server secret ``secret_version``.
    sealed_secret: Mapped[str] = mapped_column(String(300))
    secret_version: Mapped[int] = mapped_column(Integer)
    # During a rotation's overlap the previous secret also signs every delivery.
    previous_sealed_secret: Mapped[str | None] = mapped_column(String(300), default=None)
    previous_secret_version: Mapped[int | None] = mapped_column(Integer, default=None)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class DeliveryState:
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every retry used up; "Resend" makes it pending again


class WebhookDelivery(Base):
    """One event on its way to one endpoint, with its last attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(EventId, ForeignKey("events.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(300), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class SenderLease(Base):
    """Who sends events: the one process whose lease has not run out."""

    __tablename__ = "sender_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
