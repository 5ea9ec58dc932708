"""The one place where errors become HTTP answers: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from akener.api.docs import allowed_methods
from akener.db.errors import DATABASE_ERRORS, RateLimitedLog, describe, is_database_error
from akener.errors import AkenerError

log = logging.getLogger("akener.api")
_db_log = RateLimitedLog(log)

STATUS_BY_CODE = {
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "VALIDATION_ERROR": 422,
    "RATE_LIMITED": 429,
    "USAGE_EXCEEDED": 429,
    "IP_NOT_ALLOWED": 403,
    "SERVICE_UNAVAILABLE": 503,
}
_LIMIT_CODES = ("USAGE_EXCEEDED", "IP_NOT_ALLOWED")  # statuses whose main code is another
CODE_BY_STATUS = {s: c for c, s in STATUS_BY_CODE.items() if c not in _LIMIT_CODES} | {
    400: "BAD_REQUEST",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
}
WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str
    message: str


class ErrorDetail(BaseModel):
    """Stable error code, human message, field errors on a 422."""

    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """Every error akener answers has this body."""

    error: ErrorDetail


def error_payload(code: str, message: str, fields: list[dict[str, str]] | None = None) -> bytes:
    """The JSON bytes of an error body."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        detail["fields"] = fields
    return json.dumps({"error": detail}, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> Response:
    """A JSON error response; 401s carry ``WWW-Authenticate: Bearer``."""
    headers = WWW_AUTHENTICATE if status == 401 else None
    return Response(
        error_payload(code, message, fields), status, headers, media_type="application/json"
    )


def akener_error_response(exc: AkenerError) -> Response:
    """Map a domain error to its status code."""
    fields = None
    field = getattr(exc, "field", None)
    if field:
        fields = [{"field": field, "message": exc.message}]
    answer = error_response(STATUS_BY_CODE.get(exc.code, 400), exc.code, exc.message, fields)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        answer.headers["Retry-After"] = str(retry_after)
    return answer


def _describe(error: dict[str, Any]) -> dict[str, str]:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        message = "unknown field"
    elif error.get("type") == "json_invalid":
        message = "the body is not valid JSON"
    return {"field": ".".join(loc) or "body", "message": message.removeprefix("Value error, ")}


async def _on_akener_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AkenerError)
    return akener_error_response(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [_describe(e) for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        # Not a value that breaks a rule: a body that cannot be read at all (documented as 400).
        return error_response(400, "BAD_REQUEST", "the body is not valid JSON", fields)
    return error_response(422, "VALIDATION_ERROR", "the request is not valid", fields)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "ERROR")
    message = {404: "no such resource", 405: "method not allowed"}.get(exc.status_code)
    response = error_response(exc.status_code, code, message or str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        # The router names only the methods of the first route it matched; a path may have more.
        allowed = allowed_methods(request.app, request.url.path)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if not is_database_error(exc):  # a constraint no service anticipated: a bug
        return await _on_unexpected(request, exc)
    _db_log.warning("database unavailable", exc)
    return error_response(503, "SERVICE_UNAVAILABLE", describe(exc))


async def _on_unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an API app."""
    app.add_exception_handler(AkenerError, _on_akener_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    # Registered per class, not through the catch-all: Starlette re-raises what reaches the
    # catch-all, and the server would log a traceback for every request the database fails.
    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting each error body a route can answer."""
    return {
        status: {"model": ErrorBody, "description": CODE_BY_STATUS.get(status, "error")}
        for status in statuses
    }
