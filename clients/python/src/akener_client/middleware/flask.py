"""Flask: a view decorator (needs the ``flask`` extra).

verifier = Verifier("https://akener.example.com", "akener_…")

@app.get("/reports")
@require_key(verifier, "reports.read")
def reports():
    return {"for": g.akener_key.name}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, g, request

from akener_client.middleware._common import credential, refusal
from akener_client.verifier import Verifier

F = TypeVar("F", bound=Callable[..., Any])


def require_key(verifier: Verifier, *scopes: str) -> Callable[[F], F]:
    """Refuse the request as akener does unless it carries a key holding ``scopes``; the view
    finds the ``Verification`` in ``flask.g.akener_key``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            key = credential(request.headers.getlist("Authorization"))
            result = None
            if key is not None:
                result = verifier.verify(key, scopes, ip=request.remote_addr)
            if result is None or not result.valid:
                status, body, headers = refusal(result)
                return Response(body, status, headers=headers)
            g.akener_key = result
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate
