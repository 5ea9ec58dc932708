"""Errors raised by the client. Every one carries akener's error code where akener gave one.

    AkenerError
    ├── AkenerTransportError        akener could not be reached, or did not answer in time
    └── AkenerAPIError              akener answered with an error body (status, code, message)
        ├── AuthenticationError     401 UNAUTHORIZED: no, malformed, unknown or inactive key
        ├── PermissionDeniedError   403 FORBIDDEN or IP_NOT_ALLOWED
        ├── NotFoundError           404 NOT_FOUND
        ├── ConflictError           409 CONFLICT
        ├── ValidationError         400 BAD_REQUEST, 422 VALIDATION_ERROR (with ``fields``)
        ├── RateLimitedError        429 RATE_LIMITED or USAGE_EXCEEDED (with ``retry_after``)
        └── ServiceUnavailableError 503 SERVICE_UNAVAILABLE

Messages never contain the key the client was made with: akener's messages never carry keys,
and the client adds none.
"""

from __future__ import annotations

from dataclasses import dataclass


class AkenerError(Exception):
    """The base of every error this package raises."""


class AkenerTransportError(AkenerError):
    """akener could not be reached, the connection broke, or the answer took too long."""


@dataclass(frozen=True)
class FieldError:
    """One field of a refused request body or query, and why."""

    field: str
    message: str


class AkenerAPIError(AkenerError):
    """akener answered with an error: ``status`` (HTTP), ``code`` (akener's) and ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: tuple[FieldError, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.retry_after = retry_after


class AuthenticationError(AkenerAPIError):
    """401: the client's key is missing, malformed, unknown, inactive or expired."""


class PermissionDeniedError(AkenerAPIError):
    """403: the key lacks a permission, or its allowlist does not hold this address."""


class NotFoundError(AkenerAPIError):
    """404: no such key, owner, webhook or delivery (or no such path)."""


class ConflictError(AkenerAPIError):
    """409: a name is taken, a key cannot be rotated, too many webhooks."""


class ValidationError(AkenerAPIError):
    """400 or 422: the request was refused as invalid; ``fields`` says which and why."""


class RateLimitedError(AkenerAPIError):
    """429: the calling key is rate limited or out of credits; ``retry_after`` in seconds."""


class ServiceUnavailableError(AkenerAPIError):
    """503: akener cannot decide now (its database is unreachable, slow, full or read-only)."""


_BY_STATUS: dict[int, type[AkenerAPIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_for(
    status: int,
    code: str,
    message: str,
    *,
    fields: tuple[FieldError, ...] = (),
    retry_after: float | None = None,
) -> AkenerAPIError:
    """The exception for an error answer, chosen by its HTTP status."""
    cls = _BY_STATUS.get(status, AkenerAPIError)
    return cls(status, code, message, fields=fields, retry_after=retry_after)
