"""POST /api/v1/keys/verify: for services that prefer to ask akener rather than sit behind it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from akener.accounts.permissions import Principal
from akener.api.deps import get_principal, get_runtime
from akener.api.errors import responses
from akener.runtime import Runtime
from akener.verify.schemas import VerifiedKeyRead, VerifyRequest, VerifyResponse
from akener.verify.service import verify_key

router = APIRouter(prefix="/api/v1", tags=["verify"])


@router.post(
    "/keys/verify", response_model=VerifyResponse, responses=responses(400, 401, 403, 422, 503)
)
async def verify(
    body: VerifyRequest,
    actor: Annotated[Principal, Depends(get_principal)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> VerifyResponse:
    """Whether ``key`` is an active key holding every scope in ``scopes``; needs the caller's
    key to hold ``api_keys.verify``. Always 200 once the caller is allowed; ``code`` says why.
    ``key`` describes the key found (VALID, INSUFFICIENT_SCOPE, INACTIVE), else it is null."""
    result = await verify_key(runtime.verifier, actor, key=body.key, scopes=body.scopes)
    key = None
    if result.key is not None:
        key = VerifiedKeyRead(
            id=result.key.id, name=result.key.name, scopes=sorted(result.key.scopes)
        )
    return VerifyResponse(valid=result.valid, code=result.verdict.value, key=key)
