"""Dashboard errors as pages (or JSON for the page script): never a bare 500 for a refusal."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from akener.api.errors import STATUS_BY_CODE
from akener.db.errors import DATABASE_ERRORS, RateLimitedLog, describe, is_database_error
from akener.errors import AkenerError
from akener.web.csrf import CsrfRejected
from akener.web.deps import (
    SESSION_COOKIE,
    LoginRequired,
    flash,
    queue_cookie,
    see_other,
    wants_json,
)
from akener.web.templating import render

log = logging.getLogger("akener.web")
_db_log = RateLimitedLog(log)

TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Already exists",
    422: "Check your input",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable",
}
CSRF_MESSAGE = (
    "This form could not be verified (it is stale, or it did not come from this dashboard)."
    " Nothing was changed. Go back, reload the page and try again."
)


def error_page(request: Request, status: int, message: str, code: str = "ERROR") -> Response:
    """An error as a page, or as JSON when the page script asked."""
    if wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    page = getattr(request.state, "page", None)
    if page is None:
        request.state.page = {"csrf_token": "", "me": None, "can": lambda _p: False, "flash": None}
    context = {"status": status, "title": TITLES.get(status, "Error"), "message": message}
    return render(request, "errors/error.html", context, status_code=status)


async def _on_login_required(request: Request, _exc: Exception) -> Response:
    if wants_json(request):
        return error_page(request, 401, "your session has ended; sign in again", "UNAUTHORIZED")
    target = request.url.path if request.method == "GET" else "/manage/api-keys"
    if request.cookies.get(SESSION_COOKIE):
        # The cookie names no live session: expired, signed out elsewhere, deactivated or forged.
        queue_cookie(request, SESSION_COOKIE, None)
        flash(request, "Your session has ended. Sign in again.", "info")
    return see_other(f"/login?next={quote(target)}")


async def _on_csrf(request: Request, _exc: Exception) -> Response:
    return error_page(request, 403, CSRF_MESSAGE, "CSRF_FAILED")


async def _on_akener_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AkenerError)
    status = STATUS_BY_CODE.get(exc.code, 400)
    message = exc.message[:1].upper() + exc.message[1:]
    return error_page(request, status, message, exc.code)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {
        404: "There is no page at this address.",
        405: "This address does not accept that kind of request.",
    }
    message = messages.get(exc.status_code, str(exc.detail))
    return error_page(request, exc.status_code, message)


async def _on_validation(request: Request, _exc: Exception) -> Response:
    return error_page(request, 400, "The request was not understood.", "BAD_REQUEST")


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if not is_database_error(exc):
        return await _on_unexpected(request, exc)
    _db_log.warning("database unavailable", exc)
    message = describe(exc)
    return error_page(request, 503, message[:1].upper() + message[1:] + ".", "SERVICE_UNAVAILABLE")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled dashboard error", exc_info=exc)
    return error_page(request, 500, "Something went wrong; the server log has details.")


def install_web_error_handlers(app: FastAPI) -> None:
    """Register the dashboard's handlers."""
    app.add_exception_handler(LoginRequired, _on_login_required)
    app.add_exception_handler(CsrfRejected, _on_csrf)
    app.add_exception_handler(AkenerError, _on_akener_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    for kind in DATABASE_ERRORS:  # per class: the catch-all re-raises (a traceback per request)
        app.add_exception_handler(kind, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
