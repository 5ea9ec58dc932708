"""``/healthz``, ``/readyz`` and ``/metrics``: plain ASGI, for orchestrators and Prometheus.

* ``GET /healthz`` — 200 ``{"status": "ok"}`` whenever the process answers at all.
* ``GET /readyz`` — 200 when the database answers and its schema is current (or newer, during
  a rolling upgrade), else 503; the body names each check. The change listener's state is in the
  body but never fails readiness: a database failover would otherwise drain every instance at
  once, while requests are still answered correctly (from the database) without it.
* ``GET /metrics`` — the Prometheus text format, for a Bearer key holding ``metrics.read`` or a
  connection whose socket address is in ``AKENER_METRICS_ALLOWED_IPS``. Forwarding headers
  are never consulted for that allowlist. 401/403 with akener's JSON errors otherwise.

``MeteredRequests`` counts the answers that go through the framework (the management API and
the verify API) for the metrics; ``/authz`` reports its own (akener.authz.handler).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from akener.accounts.permissions import METRICS_READ
from akener.api.errors import akener_error_response, error_response
from akener.db.errors import RateLimitedLog
from akener.errors import AkenerError
from akener.metrics.probes import readiness
from akener.metrics.service import CONTENT_TYPE
from akener.runtime import Runtime
from akener.verify.bearer import authorization_values, parse_bearer
from akener.verify.throttle import Network

HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
OPS_PATHS = frozenset({HEALTHZ, READYZ, METRICS})
_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")
_OK = json.dumps({"status": "ok"}).encode()
_NOT_STARTED = json.dumps({"status": "not ready", "checks": {"database": "not started"}}).encode()


class _StatusNote:
    """A ``send`` that notes the status it passes on (the real send's awaitable is returned)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500  # what the server answers when the application raises

    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        return self.send(message)


class MeteredRequests:
    """Tells ``observe`` the path, status and duration of every HTTP request through ``app``."""

    def __init__(self, app: ASGIApp, observe: Callable[[str, int, float], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve, then report."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        note = _StatusNote(send)
        try:
            await self.app(scope, receive, note)
        finally:
            self.observe(scope["path"], note.status, perf_counter() - started)


def _in(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A server bound to "::" sees IPv4 clients as ::ffff:a.b.c.d; the list names a.b.c.d.
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return any(ip in network or (mapped is not None and mapped in network) for network in networks)


async def _json(send: Send, status: int, body: bytes, method: str) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode()), _NO_STORE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


class OpsEndpoints:
    """Answers the three operations paths; ``runtime`` is None before start and after stop."""

    def __init__(self, runtime: Callable[[], Runtime | None], allowed: tuple[Network, ...]) -> None:
        self.runtime = runtime
        self.allowed = allowed
        self._warn = RateLimitedLog(logging.getLogger("akener.metrics"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch by path; only GET and HEAD."""
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            answer = error_response(405, "METHOD_NOT_ALLOWED", "use GET")
            answer.headers["Allow"] = "GET, HEAD"
            await answer(scope, receive, send)
            return
        path = scope["path"]
        if path == HEALTHZ:
            await _json(send, 200, _OK, method)
        elif path == READYZ:
            await self._ready(send, method)
        else:
            await self._metrics(scope, receive, send)

    async def _ready(self, send: Send, method: str) -> None:
        runtime = self.runtime()
        if runtime is None:
            await _json(send, 503, _NOT_STARTED, method)
            return
        guard = runtime.guard
        found = await readiness(
            runtime.engine,
            listener_up=None if runtime.listener is None else runtime.listener.connected,
            bound=_bound(runtime),
            warn=self._warn,
            file_intact=guard.check if guard is not None else None,
        )
        body = json.dumps(found.body()).encode()
        await _json(send, 200 if found.ready else 503, body, method)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime()
        if runtime is None:
            await error_response(503, "SERVICE_UNAVAILABLE", "akener is not started")(
                scope, receive, send
            )
            return
        if runtime.metrics is None:
            message = "metrics are turned off (AKENER_METRICS_ENABLED=false)"
            await error_response(404, "NOT_FOUND", message)(scope, receive, send)
            return
        peer = scope.get("client")
        address = peer[0] if peer else None
        # The allowlist sees the socket's address only: a forwarding header is whatever the
        # client wrote in it unless a proxy replaced it, so it never opens /metrics.
        if not _in(address, self.allowed):
            try:
                await self._authorize(runtime, scope, address)
            except AkenerError as exc:
                await akener_error_response(exc)(scope, receive, send)
                return
        body = await runtime.metrics.exposition(runtime.sessionmaker, bound=_bound(runtime))
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            _NO_STORE,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else body
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _authorize(runtime: Runtime, scope: Scope, address: str | None) -> None:
        verifier = runtime.verifier
        client = verifier.client(address, scope["headers"])
        key = parse_bearer(authorization_values(scope["headers"]))
        verified = await verifier.verify(key, client)
        verified.principal(client).require(METRICS_READ)


def _bound(runtime: Runtime) -> float:
    """The longest a database read may take: a pooled connection, a new one, the query."""
    s = runtime.settings
    return s.db_pool_timeout_seconds + s.db_connect_timeout_seconds + s.db_query_timeout_seconds
