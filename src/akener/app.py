"""The ASGI application: a thin dispatcher in front of the FastAPI app, owning the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from akener import __version__
from akener.api.auth import ApiKeyAuthMiddleware
from akener.api.errors import install_error_handlers
from akener.api.keys import router as keys_router
from akener.api.limits import BodySizeLimitMiddleware
from akener.api.verify import router as verify_router
from akener.authz.handler import ForwardAuth, not_started
from akener.logs import RequestLogMiddleware, configure_logging
from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.service import Verifier

log = logging.getLogger("akener")


def build_api() -> FastAPI:
    """The management API and its OpenAPI description (at /docs and /openapi.json)."""
    api = FastAPI(
        title="akener",
        version=__version__,
        description="Self-hosted API keys. Every /api/v1 request needs a Bearer key.",
    )
    install_error_handlers(api)
    api.include_router(verify_router)
    api.include_router(keys_router)
    return api


class AkenerApp:
    """ASGI entry point; the lifespan builds the Runtime every request shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.api = build_api()
        self._runtime: Runtime | None = None
        stack: ASGIApp = ApiKeyAuthMiddleware(self.api, self._verifier)
        stack = BodySizeLimitMiddleware(stack, settings.max_body_bytes)
        self._http: ASGIApp = RequestLogMiddleware(stack)
        # Forward-auth bypasses the framework and the per-request log line (docs/verification.md).
        self._authz: ASGIApp = not_started

    @property
    def runtime(self) -> Runtime:
        """The running process's resources; only inside the lifespan."""
        if self._runtime is None:
            raise RuntimeError("akener is not started")
        return self._runtime

    def _verifier(self) -> Verifier:
        return self.runtime.verifier

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Start the runtime, serve, then release it (the lifespan, usable from tests)."""
        runtime = await Runtime.start(self.settings)
        self._runtime = runtime
        self.api.state.runtime = runtime
        self._authz = ForwardAuth(runtime.verifier)
        try:
            yield runtime
        finally:
            self._authz = not_started
            self._runtime = None
            await runtime.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch lifespan events and HTTP requests; /authz first, before any framework."""
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/authz" or path.startswith("/authz/"):
                await self._authz(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started = False
        try:
            async with self.running():
                started = True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except Exception as exc:
            if started:
                raise
            log.error("startup failed: %s", exc)
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def create_app() -> AkenerApp:
    """Server factory (``uvicorn --factory akener.app:create_app``), settings from env."""
    settings = Settings()
    configure_logging(settings.log_level)
    return AkenerApp(settings)
