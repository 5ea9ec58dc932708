"""The ASGI application: a thin dispatcher in front of the FastAPI app, owning the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from akener import __version__
from akener.api.audit import router as audit_router
from akener.api.auth import ApiKeyAuthMiddleware, is_api_path
from akener.api.changes import router as changes_router
from akener.api.deps import SAFE_METHODS, get_runtime, runtime_dependency
from akener.api.docs import STATIC_PREFIX, install_docs
from akener.api.errors import install_error_handlers
from akener.api.fastpath import VERIFY_PATH, ApiFastPath
from akener.api.hooks import router as hooks_router
from akener.api.keys import router as keys_router
from akener.api.limits import BodySizeLimitMiddleware
from akener.api.owners import router as owners_router
from akener.api.verify import router as verify_router
from akener.api.webhooks import router as webhooks_router
from akener.authz.handler import ForwardAuth, not_started
from akener.db.base import utcnow
from akener.installation.home import locate
from akener.logs import RequestLogMiddleware, configure_logging
from akener.ops.handler import OPS_PATHS, MeteredRequests, OpsEndpoints
from akener.redirects import LocalRedirectsMiddleware
from akener.runtime import Runtime
from akener.settings import Settings
from akener.stopping import before_server_stops
from akener.verify.service import Verifier
from akener.verify.throttle import parse_networks
from akener.web.app import build_web, wrap_web

log = logging.getLogger("akener")

# Served by the API app although outside /api: its OpenAPI description and the docs pages.
API_DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
DOCS_STATIC = STATIC_PREFIX + "/"
METERED_VERIFY_PATH = "/api/v1/keys/verify"  # counted apart from the rest of the API


def build_api() -> FastAPI:
    """The management API and its OpenAPI description (at /docs and /openapi.json)."""
    api = FastAPI(
        title="akener",
        version=__version__,
        description="Self-hosted API keys. Every /api/v1 request needs a Bearer key.",
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(api)
    api.dependency_overrides[get_runtime] = runtime_dependency
    install_docs(api)
    api.include_router(verify_router)
    api.include_router(changes_router)  # before /keys/{id}
    api.include_router(keys_router)
    api.include_router(owners_router)
    api.include_router(audit_router)
    api.include_router(webhooks_router)
    api.include_router(hooks_router)
    return api


class AkenerApp:
    """ASGI entry point; the lifespan builds the Runtime every request shares."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock  # tests travel in time through it
        self.api = build_api()
        self.web = build_web()
        self._runtime: Runtime | None = None
        self._ops = OpsEndpoints(
            lambda: self._runtime, parse_networks(settings.metrics_allowed_ips)
        )
        self._api_stack: ASGIApp = ApiKeyAuthMiddleware(self.api, self._verifier)
        self._web_stack: ASGIApp = wrap_web(self.web)
        stack: ASGIApp = BodySizeLimitMiddleware(self._dispatch, settings.max_body_bytes)
        stack = LocalRedirectsMiddleware(stack, settings.public_url)
        stack = MeteredRequests(stack, self._observe_request) if settings.metrics_enabled else stack
        self._http: ASGIApp = RequestLogMiddleware(stack)
        # The verify API, whoami, one key and the key list before the framework (same answers).
        self.fast = ApiFastPath(self._http, settings.max_body_bytes)
        # Forward-auth bypasses the framework and the per-request log line (docs/verification.md).
        self._authz: ASGIApp = not_started

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/api (every spelling) and the API docs go to the API; the rest is the dashboard."""
        path = scope.get("path", "")
        if path.startswith("/hooks/"):
            await self.api(scope, receive, send)  # signed by their senders, not by akener keys
        elif path in OPS_PATHS:
            await self._ops(scope, receive, send)
        elif is_api_path(path) or path in API_DOC_PATHS or path.startswith(DOCS_STATIC):
            await self._api_stack(scope, receive, send)
        else:
            await self._web_stack(scope, receive, send)

    @property
    def runtime(self) -> Runtime:
        """The running process's resources; only inside the lifespan."""
        if self._runtime is None:
            raise RuntimeError("akener is not started")
        return self._runtime

    @property
    def framework(self) -> ASGIApp:
        """Every HTTP request through the framework, without the fast paths (tests compare)."""
        return self._http

    def _verifier(self) -> Verifier:
        return self.runtime.verifier

    def _observe_request(self, path: str, status: int, seconds: float) -> None:
        """Count one answer of the verify API or the management API (docs/metrics.md)."""
        runtime = self._runtime
        if runtime is None or runtime.metrics is None:
            return
        if path == METERED_VERIFY_PATH:
            runtime.metrics.recorders.verify.observe(status, seconds)
        elif is_api_path(path):
            runtime.metrics.recorders.api.observe(status, seconds)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Start the runtime, serve, then release it (the lifespan, usable from tests)."""
        runtime = await Runtime.start(self.settings, clock=self.clock)
        self._runtime = runtime
        self.api.state.runtime = runtime
        self.web.state.runtime = runtime
        self._authz = ForwardAuth(runtime.verifier, authz_metrics(runtime))
        self.fast.start(runtime)
        if runtime.metrics is not None:
            self.fast.observe = self._observe_request
            self.fast.verdicts = runtime.metrics.recorders.verdict
        try:
            yield runtime
        finally:
            self.fast.start(None)
            self.fast.observe = self.fast.verdicts = None
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
                if scope["method"] not in SAFE_METHODS and path != VERIFY_PATH:
                    send = self.fast.noting_writes(send)
                if path.startswith("/api/v1/") and (fast := self.fast.route(path)) is not None:
                    await fast(scope, receive, send)
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
            async with self.running() as runtime:
                started = True
                # Change streams never end by themselves: end them when the server is told to
                # stop, or it would wait for them forever (akener.stopping).
                restore = before_server_stops(runtime.feed.stop_streams)
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
                restore()
        except Exception as exc:
            if started:
                raise
            log.error("startup failed: %s", exc)
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def authz_metrics(runtime: Runtime) -> Callable[[int, float], None] | None:
    """Where /authz reports each answer's status and duration (None: metrics are off)."""
    return None if runtime.metrics is None else runtime.metrics.recorders.authz.observe


def create_app() -> AkenerApp:
    """Server factory (``uvicorn --factory akener.app:create_app``), settings from env."""
    settings = locate().settings  # AKENER_HOME (set by 'akener serve') or the working directory
    configure_logging(settings.log_level)
    return AkenerApp(settings)
