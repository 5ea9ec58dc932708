"""Shapes of keys going in and out of akener (API bodies, CLI --json)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from akener.accounts.permissions import ALL_PERMISSIONS, RESERVED_NAMESPACES, check_reserved
from akener.instants import in_range_utc
from akener.keys import limits as lim

NAME_MAX = 100
SCOPE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-/*]{0,99}")
MAX_SCOPES = 64
# What the server accepts as one scope, for the OpenAPI document (validation is clean_scopes):
# a real akener permission, or a free-form name outside akener's reserved namespaces. The end of
# input is written (?![\s\S]) because "$" also matches before a final newline in Python's re.
_END = r"(?![\s\S])"
SCOPE_PATTERN = (
    "^(?:"
    + "|".join(re.escape(p) for p in ALL_PERMISSIONS)
    + "|(?!(?:"
    + "|".join(RESERVED_NAMESPACES)
    + ")(?:\\.|"
    + _END
    + "))"
    + SCOPE_RE.pattern
    + ")"
    + _END
)


def clean_name(value: str) -> str:
    """Trim; 1-100 characters; no control characters. Anything else printable is kept exactly."""
    value = value.strip()
    if not value:
        raise ValueError("name must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"name must be at most {NAME_MAX} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
        raise ValueError("name must not contain control or invisible characters")
    return value


def clean_scopes(values: list[str]) -> list[str]:
    """Each scope a short permission-like word; duplicates dropped, order kept."""
    if len(values) > MAX_SCOPES:
        raise ValueError(f"at most {MAX_SCOPES} scopes")
    seen: dict[str, None] = {}
    for scope in values:
        if not SCOPE_RE.fullmatch(scope):
            raise ValueError(
                f"invalid scope {scope[:40]!r}: use letters, digits and _ . : - / *"
                " (at most 100 characters)"
            )
        check_reserved(scope)
        seen[scope] = None
    return list(seen)


# Strict: a number is not a name. Datetimes stay lax so ISO strings from JSON are accepted.
# The schema states the length the server keeps (1-100), so clients and fuzzers see the limit.
KeyName = Annotated[
    str, Field(strict=True, min_length=1, max_length=NAME_MAX), AfterValidator(clean_name)
]
Scope = Annotated[
    str, Field(strict=True, json_schema_extra={"pattern": SCOPE_PATTERN, "maxLength": 100})
]
Scopes = Annotated[
    list[Scope], Field(json_schema_extra={"maxItems": MAX_SCOPES}), AfterValidator(clean_scopes)
]
StatusValue = Literal["ACTIVE", "INACTIVE"]
# Any UTC offset is accepted; the instant must convert to UTC inside the calendar.
Expiry = Annotated[AwareDatetime, AfterValidator(in_range_utc)]


OWNER_ID_RE = lim.OWNER_ID_RE
WINDOW_NAME_RE = lim.WINDOW_NAME_RE


def clean_owner_id(value: str) -> str:
    """Letters, digits and ``_.-``, 1 to 128 characters."""
    if not OWNER_ID_RE.fullmatch(value):
        raise ValueError("owner_id must be 1 to 128 letters, digits, '_', '.' or '-'")
    return value


# ECMA and Python read these alike: no "$", which Python also matches before a final newline.
OWNER_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}(?![\s\S])"
WINDOW_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}(?![\s\S])"


def clean_window_name(value: str) -> str:
    """Letters, digits and ``_.-``, 1 to 64 characters."""
    if not WINDOW_NAME_RE.fullmatch(value):
        raise ValueError("a window name must be 1 to 64 letters, digits, '_', '.' or '-'")
    return value


OwnerId = Annotated[
    str,
    Field(strict=True, max_length=1000, json_schema_extra={"pattern": OWNER_ID_PATTERN}),
    AfterValidator(clean_owner_id),
]


class RateLimitWindow(BaseModel):
    """At most ``limit`` requests per ``period_seconds``, under ``name``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        Field(strict=True, max_length=1000, json_schema_extra={"pattern": WINDOW_NAME_PATTERN}),
        AfterValidator(clean_window_name),
    ]
    limit: int = Field(strict=True, ge=1, le=lim.MAX_LIMIT)
    period_seconds: int = Field(strict=True, ge=1, le=lim.MAX_PERIOD)


def clean_windows(values: list[RateLimitWindow]) -> list[RateLimitWindow]:
    """At most five windows, each name once."""
    if len(values) > lim.MAX_WINDOWS:
        raise ValueError(f"at most {lim.MAX_WINDOWS} rate-limit windows")
    names = [w.name for w in values]
    if len(set(names)) != len(names):
        raise ValueError("each rate-limit window needs its own name")
    return values


def clean_allowed_ips(values: list[str]) -> list[str]:
    """CIDR blocks, IPv4 or IPv6, in canonical form; duplicates dropped, order kept."""
    if len(values) > lim.MAX_ALLOWED_IPS:
        raise ValueError(f"at most {lim.MAX_ALLOWED_IPS} allowed address blocks")
    return list(dict.fromkeys(str(lim.parse_network(v)) for v in values))


RateLimits = Annotated[
    list[RateLimitWindow],
    Field(json_schema_extra={"maxItems": lim.MAX_WINDOWS}),
    AfterValidator(clean_windows),
]
AllowedIps = Annotated[
    list[Annotated[str, Field(strict=True, max_length=1000)]],
    Field(json_schema_extra={"maxItems": lim.MAX_ALLOWED_IPS}),
    AfterValidator(clean_allowed_ips),
]


class Refill(BaseModel):
    """Set ``remaining`` to ``amount`` at 00:00 UTC (daily) or on the 1st at 00:00 UTC."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(strict=True, ge=1, le=lim.MAX_CREDITS)
    interval: Literal["daily", "monthly"]


class CreditsSet(BaseModel):
    """Credits to spend; one per accepted request unless the verify API asks another cost."""

    model_config = ConfigDict(extra="forbid")

    remaining: int = Field(strict=True, ge=0, le=lim.MAX_CREDITS)
    refill: Refill | None = None


class CreditsRead(CreditsSet):
    """Credits as stored, with the next refill instant (None: no refill)."""

    refill_at: datetime | None = None


class KeyCreate(BaseModel):
    """Body of POST /api/v1/keys."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scopes: Scopes = Field(default_factory=list)
    expires_at: Expiry | None = None
    owner_id: OwnerId | None = None
    rate_limits: RateLimits = Field(default_factory=list)
    credits: CreditsSet | None = None
    allowed_ips: AllowedIps = Field(default_factory=list)


class KeyUpdate(BaseModel):
    """Body of PATCH /api/v1/keys/{id}: status, name, expiry (null: never) and/or all scopes."""

    model_config = ConfigDict(extra="forbid")

    status: StatusValue | None = None
    name: KeyName | None = None
    expires_at: Expiry | None = None
    scopes: Scopes | None = None
    # null clears: no owner, no windows, unlimited credits, any address.
    owner_id: OwnerId | None = None
    rate_limits: RateLimits | None = None
    credits: CreditsSet | None = None
    allowed_ips: AllowedIps | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> KeyUpdate:
        clearable = {"expires_at", "owner_id", "rate_limits", "credits", "allowed_ips"}
        unset = self.status is None and self.name is None and self.scopes is None
        if unset and not self.model_fields_set & clearable:
            raise ValueError(
                "give 'status', 'name', 'expires_at', 'scopes', 'owner_id', 'rate_limits',"
                " 'credits' and/or 'allowed_ips'"
            )
        return self


MAX_GRACE_SECONDS = 7 * 24 * 3600


def whole_number(value: object) -> object:
    """A JSON integer, also when written ``3600.0`` (JSON Schema's integer); never a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


class KeyRotate(BaseModel):
    """Body of POST /api/v1/keys/{id}/rotate."""

    model_config = ConfigDict(extra="forbid")

    grace_period_seconds: Annotated[
        int, Field(ge=0, le=MAX_GRACE_SECONDS), BeforeValidator(whole_number)
    ]


class KeyRead(BaseModel):
    """A key as anyone may see it: never the digest, never the secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    masked_key: str
    status: StatusValue
    scopes: list[str]
    # Held but without effect until granted again (a namespace reserved by an upgrade).
    suspended_scopes: list[str] = Field(default_factory=list)
    created_at: datetime
    created_by: str
    # Both written from memory in batches (docs/verification.md): up to a flush interval behind.
    last_used_at: datetime | None
    expires_at: datetime | None = None
    previous_valid_until: datetime | None = None
    rotated_at: datetime | None = None
    request_count: int = 0
    owner_id: str | None = None
    rate_limits: list[RateLimitWindow] = Field(default_factory=list)
    credits: CreditsRead | None = None
    allowed_ips: list[str] = Field(default_factory=list)


class KeyCreated(KeyRead):
    """The answer to a create: the only time the plaintext ``key`` is ever shown."""

    key: str

    @classmethod
    def of(cls, row: object, plaintext: str) -> KeyCreated:
        """A stored key and the plaintext that was just made for it."""
        return cls(**KeyRead.model_validate(row).model_dump(), key=plaintext)


class KeyPage(BaseModel):
    """One page of keys, newest first."""

    items: list[KeyRead]
    next_cursor: str | None


class LeakReport(BaseModel):
    """Where a leaked key was found (optional)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=1000)


class OwnerSet(BaseModel):
    """Body of PUT /api/v1/owners/{owner_id}: limits shared by every key of the owner."""

    model_config = ConfigDict(extra="forbid")

    rate_limits: RateLimits = Field(default_factory=list)
    credits: CreditsSet | None = None


class OwnerRead(BaseModel):
    """An owner: its shared limits and how many keys it has."""

    model_config = ConfigDict(from_attributes=True)

    owner_id: str
    rate_limits: list[RateLimitWindow] = Field(default_factory=list)
    credits: CreditsRead | None = None
    key_count: int = 0


class OwnerPage(BaseModel):
    """One page of owners, ordered by id."""

    items: list[OwnerRead]
    next_cursor: str | None


def windows_in(values: list[RateLimitWindow] | None) -> list[lim.Window] | None:
    """Validated windows for the services."""
    if values is None:
        return None
    return [lim.Window(w.name, w.limit, w.period_seconds) for w in values]


def credits_in(value: CreditsSet | None) -> lim.Credits | None:
    """Validated credits for the services."""
    if value is None:
        return None
    refill = value.refill
    return lim.Credits(
        value.remaining,
        None if refill is None else refill.amount,
        None if refill is None else refill.interval,
    )
