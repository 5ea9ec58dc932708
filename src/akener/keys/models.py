"""The api_keys table: one row per key, holding its digest, never the key."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from akener.db.base import Base, UTCDateTime, utcnow
from akener.keys.limits import (
    Credits,
    Limits,
    networks,
    next_boundary,
    refilled,
    windows_from_json,
)


class HasCredits(Protocol):
    """A row holding credits columns (a key or an owner)."""

    credits_remaining: int | None
    credits_refill_amount: int | None
    credits_refill_interval: str | None
    credits_refilled_at: datetime | None


def credits_view(row: HasCredits, now: datetime) -> dict[str, Any] | None:
    """The API shape of a row's credits as of ``now`` (a refill due is shown as done)."""
    if row.credits_remaining is None:
        return None
    stored = credits_of(row)
    assert stored is not None
    remaining, _ = refilled(
        stored.remaining,
        stored.refill_amount,
        stored.refill_interval,
        row.credits_refilled_at,
        now,
    )
    if stored.refill_amount is None or stored.refill_interval is None:
        return {"remaining": remaining, "refill": None, "refill_at": None}
    return {
        "remaining": remaining,
        "refill": {"amount": stored.refill_amount, "interval": stored.refill_interval},
        "refill_at": next_boundary(stored.refill_interval, now),
    }


def credits_of(row: HasCredits) -> Credits | None:
    """The stored credits of a key or owner (None: unlimited)."""
    if row.credits_remaining is None:
        return None
    interval = row.credits_refill_interval
    return Credits(
        remaining=row.credits_remaining,
        refill_amount=row.credits_refill_amount,
        refill_interval="daily" if interval == "daily" else "monthly" if interval else None,
    )


class KeyStatus(enum.StrEnum):
    """A key is either accepted (ACTIVE) or refused although well formed (INACTIVE)."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


def new_key_id() -> str:
    """An opaque, random identifier (it reveals nothing about the key)."""
    return uuid.uuid4().hex


class ApiKey(Base):
    """A key of the installation; it belongs to no person."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("status IN ('ACTIVE', 'INACTIVE')", name="status"),
        Index("ix_api_keys_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_key_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    pepper_version: Mapped[int] = mapped_column(Integer)
    masked_key: Mapped[str] = mapped_column(String(71))
    status: Mapped[str] = mapped_column(String(8), default=KeyStatus.ACTIVE.value)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Names in a namespace an upgrade reserved after the key got them: held but without effect
    # until someone who holds them grants them again (migration 0007, docs/security.md).
    suspended_scopes: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Refused from this instant on (None: never expires).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # After a rotation the previous secret's digest stays valid until previous_valid_until.
    previous_digest: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    previous_pepper_version: Mapped[int | None] = mapped_column(Integer, default=None)
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Written from memory in batches by akener.verify.usage; never part of a key change event.
    request_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Limits (docs/limits.md). Windows: [{"name", "limit", "period_seconds"}]; allowlist: CIDR.
    owner_id: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    rate_limits: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    allowed_ips: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    credits_remaining: Mapped[int | None] = mapped_column(BigInteger, default=None)
    credits_refill_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    credits_refill_interval: Mapped[str | None] = mapped_column(String(8), default=None)
    credits_refilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def effective_scopes(self) -> frozenset[str]:
        """The scopes that take effect: every scope held, less the suspended ones."""
        return frozenset(self.scopes) - frozenset(self.suspended_scopes or ())

    @property
    def credits(self) -> dict[str, Any] | None:
        """Credits as the API shows them, as of now."""
        return credits_view(self, utcnow())

    def limits(self) -> Limits:
        """The key's own limits (an owner's shared ones come on top)."""
        return Limits(
            windows=windows_from_json(self.rate_limits),
            credits=credits_of(self),
            allowed=networks(self.allowed_ips),
            owner_id=self.owner_id,
        )

    @property
    def is_active(self) -> bool:
        """True when the key is switched on."""
        return self.status == KeyStatus.ACTIVE.value

    def is_expired(self, now: datetime) -> bool:
        """True once the key's expiry has passed."""
        return self.expires_at is not None and now >= self.expires_at

    def previous_secret_valid(self, now: datetime) -> bool:
        """True while a rotated-out secret is still in its grace period."""
        return self.previous_valid_until is not None and now < self.previous_valid_until


class Owner(Base):
    """Limits shared by every key with this ``owner_id`` (an external id, e.g. a customer)."""

    __tablename__ = "owners"

    owner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    rate_limits: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    credits_remaining: Mapped[int | None] = mapped_column(BigInteger, default=None)
    credits_refill_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    credits_refill_interval: Mapped[str | None] = mapped_column(String(8), default=None)
    credits_refilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    key_count = 0  # filled in by the service for answers; not a column

    @property
    def credits(self) -> dict[str, Any] | None:
        """Credits as the API shows them, as of now."""
        return credits_view(self, utcnow())

    def limits(self) -> Limits:
        """The owner's shared limits."""
        return Limits(windows=windows_from_json(self.rate_limits), credits=credits_of(self))


class KeyChangeSeq(Base):
    """One row counting key changes; SQLite processes poll it to know their cache is current.

    PostgreSQL announces changes with NOTIFY instead (see akener.keys.events).
    """

    __tablename__ = "key_change_seq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
