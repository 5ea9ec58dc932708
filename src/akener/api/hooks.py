"""Inbound hooks from other services (no akener key: each checks its sender's signature)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from akener.api.deps import AutoCommitRoute, get_runtime
from akener.api.errors import responses
from akener.db.engine import begin_write
from akener.errors import AuthenticationFailed
from akener.leaks import github
from akener.runtime import Runtime

router = APIRouter(tags=["hooks"], route_class=AutoCommitRoute)


@router.post("/hooks/github/secret-scanning", responses=responses(401, 413, 422, 503))
async def github_secret_scanning(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> Any:
    """GitHub's secret-scanning partner report: verified, acted on, answered with feedback.

    The database connection is taken only once the report is verified: reading an anonymous
    sender's body and fetching GitHub's keys must not hold one of the process's few pooled
    connections (docs/scaling.md)."""
    body = await request.body()
    verified = await runtime.github_keys.verify(
        request.headers.get("Github-Public-Key-Identifier", ""),
        request.headers.get("Github-Public-Key-Signature", ""),
        body,
    )
    if not verified:
        raise AuthenticationFailed("missing or invalid GitHub signature")
    report = github.parse_report(body)
    async with runtime.sessionmaker() as session:
        await begin_write(session)
        answer = await github.handle_report(
            session,
            runtime.peppers,
            report,
            on_leak=runtime.settings.on_leak,
            now=runtime.clock(),
            client=request.client.host if request.client else None,
        )
        await session.commit()
    return JSONResponse(answer)
