"""The server_secrets table: a fingerprint of each server secret version, never the secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from akener.db.base import Base, UTCDateTime, utcnow


class SecretFingerprint(Base):
    """HMAC of a constant under one secret version: tells a matching secret from another."""

    __tablename__ = "server_secrets"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
