"""Redirect targets never come from the request's Host header.

akener's own redirects are relative paths, but the framework builds absolute ones from the Host
header (a trailing-slash redirect, for one), and a Host header is whatever the client sent. This
layer rewrites every ``Location`` akener answers: to a path on this site, or to that path under
``AKENER_PUBLIC_URL`` when it is set. A path starting with ``//`` or ``/\\`` (which browsers read
as another host) is collapsed to a single slash first.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def local_target(location: str, public_url: str | None) -> str:
    """``location`` reduced to a path (and query) on this site, under ``public_url`` if set."""
    parts = urlsplit(location.strip())
    path = "/" + parts.path.lstrip("/\\")
    # Browsers drop tabs and newlines, so "/\t/evil.example" would turn into "//evil.example".
    path = "/" + "".join(ch for ch in path if ord(ch) > 32 and ord(ch) != 127).lstrip("/\\")
    target = urlunsplit(("", "", path, parts.query, parts.fragment))
    if public_url:
        return public_url.rstrip("/") + target
    return target


class LocalRedirectsMiddleware:
    """Rewrites the ``Location`` header of every response (see the module docstring)."""

    def __init__(self, app: ASGIApp, public_url: str | None) -> None:
        self.app = app
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to rewrite the header on the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_local(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "location" in headers:
                    headers["location"] = local_target(headers["location"], self.public_url)
            await send(message)

        await self.app(scope, receive, send_local)
