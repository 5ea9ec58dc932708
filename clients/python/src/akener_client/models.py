"""Typed answers of the akener API, as frozen dataclasses (no validation library needed).

Each model has ``from_json``, which reads akener's JSON and ignores fields it does not know, so
a newer server does not break an older client. Times are timezone-aware ``datetime`` objects.
Secrets shown once (a new key, a webhook's signing secret) are left out of ``repr``, so logging
a model never logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

KeyStatus = Literal["ACTIVE", "INACTIVE"]
VerifyCode = Literal[
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
KeySort = Literal["-created", "created", "name", "-name", "-last_used", "last_used"]
KeyExpiry = Literal["expired", "expiring", "never"]
RefillInterval = Literal["daily", "monthly"]
DeliveryState = Literal["pending", "delivered", "failed"]


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time from akener (``Z`` or an offset), or None."""
    if value is None:
        return None
    return datetime.fromisoformat(value)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class RateLimitWindow:
    """A rate-limit window: at most ``limit`` requests per ``period_seconds``."""

    name: str
    limit: int
    period_seconds: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RateLimitWindow:
        """Read one window."""
        return cls(data["name"], data["limit"], data["period_seconds"])

    def to_json(self) -> dict[str, Any]:
        """The window as akener's API takes it."""
        return {"name": self.name, "limit": self.limit, "period_seconds": self.period_seconds}


@dataclass(frozen=True, slots=True)
class Refill:
    """A credit refill: ``remaining`` is set to ``amount`` every ``interval``."""

    amount: int
    interval: RefillInterval

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Refill:
        """Read a refill."""
        return cls(data["amount"], data["interval"])

    def to_json(self) -> dict[str, Any]:
        """The refill as akener's API takes it."""
        return {"amount": self.amount, "interval": self.interval}


@dataclass(frozen=True, slots=True)
class Credits:
    """Credits to spend; ``refill_at`` (answers only) is the next refill."""

    remaining: int
    refill: Refill | None = None
    refill_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Credits:
        """Read credits."""
        refill = data.get("refill")
        return cls(
            data["remaining"],
            Refill.from_json(refill) if refill else None,
            parse_time(data.get("refill_at")),
        )

    def to_json(self) -> dict[str, Any]:
        """The credits as akener's API takes them (``refill_at`` is akener's to compute)."""
        return {
            "remaining": self.remaining,
            "refill": self.refill.to_json() if self.refill else None,
        }


def _windows(data: Mapping[str, Any]) -> tuple[RateLimitWindow, ...]:
    return tuple(RateLimitWindow.from_json(w) for w in data.get("rate_limits") or ())


def _credits(data: Mapping[str, Any]) -> Credits | None:
    credits = data.get("credits")
    return Credits.from_json(credits) if credits else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    """A key as akener shows it: never its secret, never its digest."""

    id: str
    name: str
    masked_key: str
    status: KeyStatus
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = None
    suspended_scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    previous_valid_until: datetime | None = None
    rotated_at: datetime | None = None
    request_count: int = 0
    owner_id: str | None = None
    rate_limits: tuple[RateLimitWindow, ...] = ()
    credits: Credits | None = None
    allowed_ips: tuple[str, ...] = ()

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": data["id"],
            "name": data["name"],
            "masked_key": data["masked_key"],
            "status": data["status"],
            "scopes": tuple(data["scopes"]),
            "created_at": _time(data["created_at"]),
            "created_by": data["created_by"],
            "last_used_at": parse_time(data.get("last_used_at")),
            "suspended_scopes": tuple(data.get("suspended_scopes") or ()),
            "expires_at": parse_time(data.get("expires_at")),
            "previous_valid_until": parse_time(data.get("previous_valid_until")),
            "rotated_at": parse_time(data.get("rotated_at")),
            "request_count": data.get("request_count") or 0,
            "owner_id": data.get("owner_id"),
            "rate_limits": _windows(data),
            "credits": _credits(data),
            "allowed_ips": tuple(data.get("allowed_ips") or ()),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Key:
        """Read a key."""
        return cls(**cls._fields(data))

    @property
    def active(self) -> bool:
        """Whether the key's status is ACTIVE (it may still have expired)."""
        return self.status == "ACTIVE"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedKey(Key):
    """A key just created or rotated, with its plaintext ``key``: the only time it is shown.

    ``key`` is left out of ``repr`` so that logging this object does not log the secret.
    """

    key: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreatedKey:
        """Read a key with its plaintext."""
        return cls(**cls._fields(data), key=data["key"])


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next (None: last)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedKey:
    """The checked key in a verify answer (present when a stored key was found).

    ``owner_id``, ``expires_at`` and ``limited`` are None when the server does not send them.
    """

    id: str
    name: str
    scopes: tuple[str, ...]
    owner_id: str | None = None
    expires_at: datetime | None = None
    limited: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerifiedKey:
        """Read the checked key."""
        return cls(
            id=data["id"],
            name=data["name"],
            scopes=tuple(data["scopes"]),
            owner_id=data.get("owner_id"),
            expires_at=parse_time(data.get("expires_at")),
            limited=data.get("limited"),
        )


@dataclass(frozen=True, slots=True)
class WindowLeft:
    """What a check left of one rate-limit window."""

    name: str
    limit: int
    remaining: int
    reset_seconds: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowLeft:
        """Read one window's state."""
        return cls(data["name"], data["limit"], data["remaining"], data["reset_seconds"])


@dataclass(frozen=True, slots=True)
class CreditsLeft:
    """What a check left of the credits (``remaining`` None: unlimited)."""

    remaining: int | None
    refill_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreditsLeft:
        """Read the credits' state."""
        return cls(data.get("remaining"), parse_time(data.get("refill_at")))


@dataclass(frozen=True, slots=True)
class LimitsLeft:
    """The checked key's windows and credits, as the check left them."""

    windows: tuple[WindowLeft, ...]
    credits: CreditsLeft | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LimitsLeft:
        """Read the limits' state."""
        credits = data.get("credits")
        return cls(
            tuple(WindowLeft.from_json(w) for w in data.get("windows") or ()),
            CreditsLeft.from_json(credits) if credits else None,
        )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """akener's answer to "is this key good for these scopes?"; ``valid`` only when accepted."""

    valid: bool
    code: VerifyCode
    key: VerifiedKey | None
    limits: LimitsLeft | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerifyResult:
        """Read a verify answer."""
        key = data.get("key")
        limits = data.get("limits")
        return cls(
            bool(data["valid"]),
            data["code"],
            VerifiedKey.from_json(key) if key else None,
            LimitsLeft.from_json(limits) if limits else None,
        )


@dataclass(frozen=True, slots=True)
class Owner:
    """An owner id's shared limits and how many keys it has."""

    owner_id: str
    rate_limits: tuple[RateLimitWindow, ...] = ()
    credits: Credits | None = None
    key_count: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Owner:
        """Read an owner."""
        return cls(data["owner_id"], _windows(data), _credits(data), data.get("key_count") or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One recorded change: who did what to which target, and each field before and after."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None = None
    target_name: str | None = None
    client: str | None = None
    changes: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEvent:
        """Read an audit event."""
        return cls(
            id=data["id"],
            occurred_at=_time(data["occurred_at"]),
            actor=data["actor"],
            action=data["action"],
            target_type=data["target_type"],
            target_id=data.get("target_id"),
            target_name=data.get("target_name"),
            client=data.get("client"),
            changes=data.get("changes"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    """A webhook endpoint (never its signing secret)."""

    id: str
    url: str
    events: tuple[str, ...]
    description: str
    created_at: datetime
    created_by: str
    previous_secret_until: datetime | None = None

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": data["id"],
            "url": data["url"],
            "events": tuple(data["events"]),
            "description": data.get("description") or "",
            "created_at": _time(data["created_at"]),
            "created_by": data["created_by"],
            "previous_secret_until": parse_time(data.get("previous_secret_until")),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Webhook:
        """Read a webhook."""
        return cls(**cls._fields(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookWithSecret(Webhook):
    """A webhook just created or given a new secret, with its ``secret`` (shown this once).

    ``secret`` is left out of ``repr``.
    """

    secret: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WebhookWithSecret:
        """Read a webhook with its secret."""
        return cls(**cls._fields(data), secret=data["secret"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One delivery of an event to a webhook, and how its attempts went."""

    id: str
    event_id: int
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        """Read a delivery."""
        return cls(
            id=data["id"],
            event_id=data["event_id"],
            state=data["state"],
            attempts=data["attempts"],
            created_at=_time(data["created_at"]),
            next_attempt_at=parse_time(data.get("next_attempt_at")),
            last_attempt_at=parse_time(data.get("last_attempt_at")),
            last_status=data.get("last_status"),
            last_error=data.get("last_error"),
            delivered_at=parse_time(data.get("delivered_at")),
        )


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One Server-Sent Event of a stream: its ``event`` name, ``id`` and ``data``.

    ``data`` is the parsed JSON when the event's data is JSON, else the text as sent.
    """

    event: str
    data: Any
    id: str | None = None
