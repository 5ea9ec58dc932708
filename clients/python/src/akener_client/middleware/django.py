"""Django: a middleware and a view decorator (needs the ``django`` extra).

In settings.py::

    MIDDLEWARE = [..., "akener_client.middleware.django.AkenerMiddleware"]
    AKENER_URL = "https://akener.example.com"
    AKENER_KEY = "akener_…"            # a key holding api_keys.verify
    AKENER_EXCLUDE_PATHS = ["/health"]  # optional: paths that need no key

    AKENER_SCOPES = ["reports.read"]   # optional: scopes every request's key must hold

A view then reads ``request.akener_key`` (id, name, scopes, owner_id); ``@require_scopes("x")``
refuses requests whose key lacks a scope.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings  # type: ignore[import-untyped]  # Django ships no types
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]

from akener_client.middleware._common import credential, refusal
from akener_client.verifier import Verification, Verifier

F = TypeVar("F", bound=Callable[..., Any])
_VERIFIERS: dict[tuple[str, str], Verifier] = {}


def _verifier() -> Verifier:
    """One Verifier per (URL, key) for the whole process: every request shares its memory."""
    ident = (str(settings.AKENER_URL), str(settings.AKENER_KEY))
    found = _VERIFIERS.get(ident)
    if found is None:
        found = _VERIFIERS[ident] = Verifier(*ident)
    return found


def _answer(result: Verification | None) -> HttpResponse:
    status, body, headers = refusal(result)
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in headers[1:]:
        response[name] = value
    return response


class AkenerMiddleware:
    """Checks every request but ``AKENER_EXCLUDE_PATHS``; sets ``request.akener_key``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.verifier = _verifier()
        self.exclude = tuple(getattr(settings, "AKENER_EXCLUDE_PATHS", ()))
        self.scopes = tuple(getattr(settings, "AKENER_SCOPES", ()))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.exclude and request.path.startswith(self.exclude):
            return self.get_response(request)
        key = credential([request.META.get("HTTP_AUTHORIZATION")])
        result = None
        if key is not None:
            result = self.verifier.verify(key, self.scopes, ip=request.META.get("REMOTE_ADDR"))
        if result is None or not result.valid:
            return _answer(result)
        request.akener_key = result
        return self.get_response(request)


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Refuse (403) requests whose key lacks one of ``scopes`` (after ``AkenerMiddleware``,
    which checked the key once: the scopes are compared here, nothing more is counted)."""
    wanted = frozenset(scopes)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            key: Verification | None = getattr(request, "akener_key", None)
            if key is None or not key.valid:
                return _answer(None)
            if not key.scopes >= wanted:
                return _answer(Verification(False, "INSUFFICIENT_SCOPE", key.key_id))
            return view(request, *args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate
