"""Per-request dashboard state: who is signed in, the CSRF token, cookies, flash messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from akener.accounts.sessions import LoginPolicy, SignedIn, resolve_session
from akener.api.deps import client_of, get_runtime, get_session
from akener.runtime import Runtime

SESSION_COOKIE = "akener_session"
ANON_CSRF_COOKIE = "akener_csrf"
FLASH_COOKIE = "akener_flash"
_COOKIES = "akener_set_cookies"  # key in the ASGI scope state: Set-Cookie values to add


class LoginRequired(Exception):
    """The page needs a signed-in user; the handler sends the browser to /login."""


def login_policy(runtime: Runtime) -> LoginPolicy:
    """The sign-in rules from the settings."""
    s = runtime.settings
    return LoginPolicy(
        session_lifetime=timedelta(hours=s.session_hours),
        max_failures_per_account=s.login_max_failures,
        max_failures_per_address=s.login_max_failures_per_address,
        lockout=timedelta(minutes=s.login_lockout_minutes),
    )


def _secure(request: Request) -> bool:
    configured = get_runtime(request).settings.secure_cookies
    return configured if configured is not None else request.url.scheme == "https"


def queue_cookie(
    request: Request, name: str, value: str | None, max_age: int | None = None
) -> None:
    """Set (or, with ``value`` None, delete) a cookie on whatever response this request gets."""
    carrier = Response()
    if value is None:
        carrier.delete_cookie(
            name, path="/", httponly=True, samesite="lax", secure=_secure(request)
        )
    else:
        carrier.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    pending: list[bytes] = request.scope.setdefault("state", {}).setdefault(_COOKIES, [])
    pending.extend(v for k, v in carrier.raw_headers if k == b"set-cookie")


class QueuedCookiesMiddleware:
    """Adds the cookies queued during the request to its response, whichever response it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                pending = scope.get("state", {}).get(_COOKIES, [])
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", v) for v in pending),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def _flash_key(runtime: Runtime) -> bytes:
    secret = runtime.settings.secret_key.get_secret_value() if runtime.settings.secret_key else ""
    return hmac.new(secret.encode(), b"akener/flash-cookie", hashlib.sha256).digest()


def flash(request: Request, text: str, kind: str = "success") -> None:
    """A message for the next page this browser shows (Post/Redirect/Get)."""
    raw = base64.urlsafe_b64encode(json.dumps({"k": kind, "t": text[:300]}).encode()).decode()
    mac = hmac.new(_flash_key(get_runtime(request)), raw.encode(), hashlib.sha256).hexdigest()
    queue_cookie(request, FLASH_COOKIE, f"{raw}.{mac[:32]}", max_age=60)


def _read_flash(request: Request) -> dict[str, str] | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    queue_cookie(request, FLASH_COOKIE, None)
    raw, _, mac = value.partition(".")
    good = hmac.new(_flash_key(get_runtime(request)), raw.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac.encode(), good[:32].encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return {"kind": str(data["k"]), "text": str(data["t"])}
    except (ValueError, KeyError, TypeError):
        return None


async def current_session(
    request: Request, session: AsyncSession = Depends(get_session)
) -> SignedIn | None:
    """The signed-in session, if any; also prepares the page context and the CSRF token."""
    signed = await resolve_session(session, request.cookies.get(SESSION_COOKIE))
    if signed is not None:
        signed = replace(signed, client=client_of(request))
        csrf_token = signed.csrf_token
    else:
        # Forms shown before sign-in (login, setup) are bound to a random cookie instead.
        csrf_token = request.cookies.get(ANON_CSRF_COOKIE) or ""
        if len(csrf_token) < 32:
            csrf_token = secrets.token_urlsafe(32)
            queue_cookie(request, ANON_CSRF_COOKIE, csrf_token)
    page: dict[str, Any] = {
        "csrf_token": csrf_token,
        "flash": _read_flash(request),
        "me": signed.user if signed else None,
        "can": signed.principal.has if signed else (lambda _permission: False),
        "path": request.url.path,
        # One clock for the whole page (expired, expiring soon, "in 3 days"): tests move it.
        "now": get_runtime(request).clock(),
    }
    request.state.page = page
    request.state.signed_in = signed
    return signed


def require_user(signed: SignedIn | None = Depends(current_session)) -> SignedIn:
    """The signed-in session; anyone else is sent to the sign-in page."""
    if signed is None:
        raise LoginRequired
    return signed


def wants_json(request: Request) -> bool:
    """True for the page script's fetch calls (they ask for JSON)."""
    return "application/json" in request.headers.get("accept", "")


def safe_next(value: str | None, default: str = "/manage/api-keys") -> str:
    """A local path to return to; anything that could leave the site becomes ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become "//evil…".
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        return default
    return value


def see_other(url: str) -> RedirectResponse:
    """The redirect of Post/Redirect/Get."""
    return RedirectResponse(url, status_code=303)


# Route parameters every dashboard page repeats, declared once.
CurrentUser = Annotated[SignedIn, Depends(require_user)]
DbSession = Annotated[AsyncSession, Depends(get_session)]
