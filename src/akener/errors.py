"""Domain errors. They carry a stable code and a message, never an HTTP status.

    AkenerError
    ├── AuthenticationFailed   no, malformed, unknown, inactive or expired credential
    ├── PermissionDenied       valid credential lacking a permission
    │   └── AddressNotAllowed  the key's allowlist does not hold the client's address
    ├── NotFound               unknown id
    ├── Conflict               a unique value already taken
    ├── InvalidInput           a value breaks a rule (field-level detail optional)
    ├── RateLimited            too many attempts
    │   └── UsageExceeded      no credits left
    └── ServiceUnavailable     akener cannot decide (database unreachable)

``akener.api.errors`` and the CLI wrapper are the only places that turn them into answers.
"""

from __future__ import annotations


class AkenerError(Exception):
    """Base of every error akener raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationFailed(AkenerError):
    """The request carries no usable credential."""

    code = "UNAUTHORIZED"


class PermissionDenied(AkenerError):
    """The credential is valid but lacks the permission the action needs."""

    code = "FORBIDDEN"


class NotFound(AkenerError):
    """No object has that id."""

    code = "NOT_FOUND"


class Conflict(AkenerError):
    """A value that must be unique is already taken."""

    code = "CONFLICT"


class InvalidInput(AkenerError):
    """A value breaks a rule; ``field`` names it when one field is to blame."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimited(AkenerError):
    """Too many attempts in a short time."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds until a request would pass, when known


class UsageExceeded(RateLimited):
    """The key (or its owner) has no credits left."""

    code = "USAGE_EXCEEDED"


class AddressNotAllowed(PermissionDenied):
    """The key may not be used from the client's address."""

    code = "IP_NOT_ALLOWED"


class ServiceUnavailable(AkenerError):
    """akener cannot decide right now; it refuses rather than guess."""

    code = "SERVICE_UNAVAILABLE"
