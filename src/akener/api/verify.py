"""POST /api/v1/keys/verify: for services that prefer to ask akener rather than sit behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from akener.accounts.permissions import Principal
from akener.api.deps import get_principal, get_runtime
from akener.api.errors import responses
from akener.runtime import Runtime
from akener.verify.limiter import Admission
from akener.verify.schemas import (
    CreditsLeft,
    LimitsRead,
    VerifiedKeyRead,
    VerifyRequest,
    VerifyResponse,
    WindowRead,
)
from akener.verify.service import VerifiedKey, verify_key

router = APIRouter(prefix="/api/v1", tags=["verify"])


@router.post(
    "/keys/verify", response_model=VerifyResponse, responses=responses(400, 401, 403, 422, 429, 503)
)
async def verify(
    body: VerifyRequest,
    actor: Annotated[Principal, Depends(get_principal)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> VerifyResponse:
    """Whether ``key`` is an active key holding every scope in ``scopes``; needs the caller's
    key to hold ``api_keys.verify``. Always 200 once the caller is allowed; ``code`` says why.
    ``key`` describes the key found (VALID, INSUFFICIENT_SCOPE, INACTIVE), else it is null.
    ``ip`` (the end user's address) and ``cost`` (0 to 1,000 credits, default 1) feed the
    checked key's limits: RATE_LIMITED, USAGE_EXCEEDED, IP_NOT_ALLOWED, with ``limits``.
    A 429 from this route means the *calling* key is limited, never the checked one."""
    result = await verify_key(
        runtime.verifier, actor, key=body.key, scopes=body.scopes, ip=body.ip, cost=body.cost
    )
    if runtime.metrics is not None:
        runtime.metrics.recorders.verdict(result.verdict.value)
    key = None
    if result.key is not None:
        key = verified_read(result.key)
    return VerifyResponse(
        valid=result.valid, code=result.verdict.value, key=key, limits=limits_read(result.admission)
    )


def verified_read(key: VerifiedKey) -> VerifiedKeyRead:
    """The ``key`` object of a verify answer."""
    return VerifiedKeyRead(
        id=key.id,
        name=key.name,
        scopes=sorted(key.scopes),
        owner_id=key.owner_id,
        expires_at=key.expires_at,
        limited=key.limited,
    )


def limits_read(admission: Admission | None) -> LimitsRead | None:
    if admission is None:
        return None
    credits = None
    if admission.credits_remaining is not None or admission.refill_at is not None:
        refill = admission.refill_at
        credits = CreditsLeft(
            remaining=admission.credits_remaining,
            refill_at=None if refill is None else datetime.fromtimestamp(refill, UTC),
        )
    windows = [
        WindowRead(name=w.name, limit=w.limit, remaining=w.remaining, reset_seconds=w.reset)
        for w in admission.windows
    ]
    return LimitsRead(windows=windows, credits=credits)
