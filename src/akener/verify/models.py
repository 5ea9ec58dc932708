"""Usage of keys, counted per key and day (the source of later charts)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from akener.db.base import Base


class KeyUsage(Base):
    """How many requests a key made on one UTC day; written in batches, never per request."""

    __tablename__ = "key_usage"
    __table_args__ = (
        Index("ix_key_usage_day", "day"),  # retention prunes by day
        # The overview's sums per day and per key read this index alone (migration 0011).
        Index("ix_key_usage_day_key_count", "day", "key_id", "count"),
    )

    key_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class KeyRefusal(Base):
    """How many requests of a key were refused for one reason on one UTC day; written by the
    same batched usage flush as ``key_usage`` (migration 0013)."""

    __tablename__ = "key_refusals"
    __table_args__ = (
        Index("ix_key_refusals_day", "day"),  # retention prunes by day
        # The overview's sums per day and reason read this index alone.
        Index("ix_key_refusals_day_reason_count", "day", "reason", "count"),
    )

    key_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
