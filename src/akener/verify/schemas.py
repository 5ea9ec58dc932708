"""Shapes of the verify API: a service asks whether a key is valid and holds some scopes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from akener.keys.schemas import MAX_SCOPES


class VerifyRequest(BaseModel):
    """Body of POST /api/v1/keys/verify."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Any string: a malformed one is an answer (MALFORMED), not a request error.
    key: str = Field(max_length=4096)
    scopes: list[str] = Field(default_factory=list, max_length=MAX_SCOPES)


class VerifiedKeyRead(BaseModel):
    """The identity of a key that verification found."""

    id: str
    name: str
    scopes: list[str]


class VerifyResponse(BaseModel):
    """Always returned with 200: ``valid`` and the reason in ``code``."""

    valid: bool
    code: Literal["VALID", "NOT_FOUND", "INACTIVE", "EXPIRED", "MALFORMED", "INSUFFICIENT_SCOPE"]
    key: VerifiedKeyRead | None
