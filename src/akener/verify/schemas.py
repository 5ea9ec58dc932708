"""Shapes of the verify API: a service asks whether a key is valid and holds some scopes."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from akener.keys.schemas import MAX_SCOPES


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("ip must be an IPv4 or IPv6 address") from None


class VerifyRequest(BaseModel):
    """Body of POST /api/v1/keys/verify."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Any string: a malformed one is an answer (MALFORMED), not a request error.
    key: str = Field(max_length=4096)
    scopes: list[str] = Field(default_factory=list, max_length=MAX_SCOPES)
    # The end user's address, checked against the key's allowlist (absent: only keys without
    # an allowlist pass).
    ip: Annotated[str, AfterValidator(_check_ip)] | None = Field(default=None, max_length=64)
    cost: int = Field(default=1, ge=0, le=1000)


class WindowRead(BaseModel):
    """One rate-limit window after this check."""

    name: str
    limit: int
    remaining: int
    reset_seconds: int


class CreditsLeft(BaseModel):
    """The credits after this check."""

    remaining: int | None
    refill_at: datetime | None


class LimitsRead(BaseModel):
    """The key's limits as this check left them."""

    windows: list[WindowRead]
    credits: CreditsLeft | None


class VerifiedKeyRead(BaseModel):
    """The identity of a key that verification found."""

    id: str
    name: str
    scopes: list[str]
    owner_id: str | None = None
    # When the key stops working: its expiry, or the end of an old secret's grace period.
    expires_at: datetime | None = None
    # True when akener must see every request of the key (windows, credits or an allowlist):
    # a cache outside akener may keep this answer only while it is false.
    limited: bool = False


class VerifyResponse(BaseModel):
    """Always returned with 200: ``valid`` and the reason in ``code``."""

    valid: bool
    code: Literal[
        "VALID",
        "NOT_FOUND",
        "INACTIVE",
        "EXPIRED",
        "MALFORMED",
        "INSUFFICIENT_SCOPE",
        "RATE_LIMITED",
        "USAGE_EXCEEDED",
        "IP_NOT_ALLOWED",
    ]
    key: VerifiedKeyRead | None
    limits: LimitsRead | None = None
