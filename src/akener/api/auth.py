"""Default-deny authentication in front of every /api route.

It sits before the router and looks at the path the router will see (``scope["path"]``, already
percent-decoded by the server), normalised further — letter case, doubled slashes and dot
segments — so no spelling of a path under /api reaches a route without a valid key.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from akener.accounts.permissions import Principal
from akener.api.errors import akener_error_response
from akener.errors import AkenerError
from akener.verify.bearer import authorization_values, parse_bearer
from akener.verify.service import Verifier

# Set in the scope by the API's fast path when it has already authenticated the caller; only
# akener's own code writes scope keys, a client cannot.
AUTHENTICATED = "akener.authenticated"


def is_api_path(path: str) -> bool:
    """True for every spelling of a path at or under /api."""
    normal = posixpath.normpath("/" + path.lower().replace("\\", "/"))
    normal = "/" + normal.lstrip("/")
    return normal == "/api" or normal.startswith("/api/")


class ApiKeyAuthMiddleware:
    """Authenticates /api requests with a Bearer key; answers 401/503 itself when it cannot."""

    def __init__(self, app: ASGIApp, verifier: Callable[[], Verifier]) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass authenticated /api requests on with ``state.principal`` set."""
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        handed: Principal | None = scope.get(AUTHENTICATED)
        if handed is not None:  # checked (and counted) once already, by akener.api.fastpath
            scope.setdefault("state", {})["principal"] = handed
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        verifier = self.verifier()
        client = verifier.client(peer[0] if peer else None, scope["headers"])
        try:
            key = parse_bearer(authorization_values(scope["headers"]))
            verified = await verifier.verify(key, client)
        except AkenerError as exc:
            await akener_error_response(exc)(scope, receive, send)
            return
        principal = verified.principal(client)
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
