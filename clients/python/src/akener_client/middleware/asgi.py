"""ASGI: a FastAPI/Starlette dependency and a plain ASGI middleware (needs the ``fastapi``
extra for the dependency).

    verifier = Verifier("https://akener.example.com", "akener_…")
    app = FastAPI()
    install(app)
    Key = Annotated[Verification, Depends(require_key(verifier, "reports.read"))]

    @app.get("/reports")
    async def reports(key: Key) -> dict[str, str]:
        return {"for": key.name}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from akener_client.middleware._common import credential, refusal
from akener_client.verifier import Verification, Verifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class KeyRefused(Exception):
    """Raised by the dependency; ``install`` turns it into akener's answer."""

    def __init__(self, result: Verification | None) -> None:
        super().__init__(result.code if result is not None else "UNAUTHORIZED")
        self.result = result


def _key_of(scope: Scope) -> str | None:
    return credential(
        v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"authorization"
    )


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def require_key(verifier: Verifier, *scopes: str) -> Callable[[Request], Awaitable[Verification]]:
    """A dependency that gives the route the checked key (id, name, scopes, owner_id) or
    refuses the request (``install`` must have been called on the app)."""
    wanted = tuple(scopes)

    async def akener_key(request: Request) -> Verification:
        scope = request.scope
        key = _key_of(scope)
        if key is None:
            raise KeyRefused(None)
        result = verifier.cached(key, wanted)
        if result is None:
            result = await verifier.averify(key, wanted, ip=_client(scope))
        if not result.valid:
            raise KeyRefused(result)
        return result

    return akener_key


async def _refused(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyRefused)
    status, body, headers = refusal(exc.result)
    return Response(body, status, headers=dict(headers))


def install(app: Any) -> None:
    """Answer ``KeyRefused`` as akener does (a FastAPI or Starlette app)."""
    app.add_exception_handler(KeyRefused, _refused)


class AkenerMiddleware:
    """Checks every HTTP request (but paths starting with one of ``exclude``) and puts the
    ``Verification`` in ``scope["state"]["akener_key"]`` (``request.state.akener_key``)."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        *,
        scopes: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.exclude = tuple(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exclude and scope["path"].startswith(self.exclude)):
            await self.app(scope, receive, send)
            return
        key = _key_of(scope)
        result = None
        if key is not None:
            result = await self.verifier.averify(key, self.scopes, ip=_client(scope))
        if result is None or not result.valid:
            status, body, headers = refusal(result)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["akener_key"] = result
        await self.app(scope, receive, send)
