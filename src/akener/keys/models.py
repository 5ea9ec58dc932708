"""The api_keys table: one row per key, holding its digest, never the key."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from akener.db.base import Base, UTCDateTime, utcnow


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

    @property
    def effective_scopes(self) -> frozenset[str]:
        """The scopes that take effect: every scope held, less the suspended ones."""
        return frozenset(self.scopes) - frozenset(self.suspended_scopes or ())

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


class KeyChangeSeq(Base):
    """One row counting key changes; SQLite processes poll it to know their cache is current.

    PostgreSQL announces changes with NOTIFY instead (see akener.keys.events).
    """

    __tablename__ = "key_change_seq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
