"""WSGI: a middleware for any WSGI application (Flask, Django, Pyramid, …).

verifier = Verifier("https://akener.example.com", "akener_…")
app.wsgi_app = AkenerWSGIMiddleware(app.wsgi_app, verifier, scopes=["reports.read"])
# in a view: request.environ["akener.key"] is the Verification (id, name, scopes, owner_id)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from akener_client.middleware._common import credential, refusal
from akener_client.verifier import Verifier

ENVIRON_KEY = "akener.key"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_REASONS = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


def status_line(status: int) -> str:
    """``"401 Unauthorized"`` and so on."""
    return f"{status} {_REASONS.get(status, 'Service Unavailable')}"


class AkenerWSGIMiddleware:
    """Checks every request (but paths starting with one of ``exclude``); accepted requests
    carry the ``Verification`` in ``environ["akener.key"]``."""

    def __init__(
        self,
        app: WSGIApp,
        verifier: Verifier,
        *,
        scopes: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.exclude = tuple(exclude)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.exclude and path.startswith(self.exclude):
            return self.app(environ, start_response)
        key = credential([environ.get("HTTP_AUTHORIZATION")])
        result = None
        if key is not None:
            result = self.verifier.verify(key, self.scopes, ip=environ.get("REMOTE_ADDR"))
        if result is None or not result.valid:
            status, body, headers = refusal(result)
            start_response(status_line(status), [*headers, ("content-length", str(len(body)))])
            return [body]
        environ[ENVIRON_KEY] = result
        return self.app(environ, start_response)
