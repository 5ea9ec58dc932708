"""CSRF protection: every state-changing dashboard request carries the page's token.

Signed-in forms carry their session's token (stored in the session row); forms shown before
sign-in carry a random value that is also in an HttpOnly cookie. The comparison is constant-time.
SameSite=Lax cookies are a second line, not the only one.
"""

from __future__ import annotations

import secrets

from fastapi import Depends, Request

from akener.accounts.sessions import SignedIn
from akener.web.deps import current_session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"


class CsrfRejected(Exception):
    """A state-changing request without the right token; nothing is changed."""


async def check_csrf(request: Request, _signed: SignedIn | None = Depends(current_session)) -> None:
    """Refuse unsafe requests whose token is missing or wrong."""
    if request.method in SAFE_METHODS:
        return
    expected: str = request.state.page["csrf_token"]
    given = request.headers.get(HEADER, "")
    if not given:
        value = (await request.form()).get(FIELD)
        given = value if isinstance(value, str) else ""
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected
