"""Request-scoped dependencies: the runtime, the session, the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from akener.accounts.permissions import Principal
from akener.db.engine import begin_write
from akener.errors import AuthenticationFailed
from akener.runtime import Runtime
from akener.verify.bearer import MISSING_MESSAGE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, set by the lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def runtime_dependency(request: Request) -> Runtime:
    """``get_runtime`` as a dependency without a thread-pool round trip per request (FastAPI
    runs plain-function dependencies in a thread); installed by ``build_api``."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_of(request: Request) -> str | None:
    """The request's client address by the one rule (akener.verify.throttle.request_client)."""
    peer = request.client.host if request.client else None
    return get_runtime(request).verifier.client(peer, request.scope["headers"])


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and transaction per request; committed by AutoCommitRoute."""
    async with get_runtime(request).sessionmaker() as session:
        if request.method not in SAFE_METHODS:
            await begin_write(session)
        request.state.session = session
        yield session


async def get_principal(request: Request) -> Principal:
    """Set by the authentication layer in front of every /api route (async: a plain function
    would cost a thread-pool round trip per request)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise AuthenticationFailed(MISSING_MESSAGE)
    return principal


class AutoCommitRoute(APIRoute):
    """Commits the request's transaction before the response is sent.

    A failing commit therefore turns into a 5xx instead of a success the database never saw
    (the pattern of polar's kit/routing.py).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the endpoint handler with a commit."""
        handler = super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            response = await handler(request)
            session: AsyncSession | None = getattr(request.state, "session", None)
            if session is not None and session.in_transaction():
                await session.commit()
            return response

        return commit_then_respond
