"""Reading the Authorization header: ``Bearer <key>``, the scheme in any letter case."""

from __future__ import annotations

from collections.abc import Sequence

from akener.errors import AuthenticationFailed

MISSING_MESSAGE = "missing or malformed Authorization header; send 'Authorization: Bearer <key>'"
REJECTED_MESSAGE = "invalid API key"


def parse_bearer(values: Sequence[bytes]) -> str:
    """The credential of the one Authorization header in ``values``; AuthenticationFailed else."""
    if len(values) != 1:
        raise AuthenticationFailed(MISSING_MESSAGE)
    try:
        text = values[0].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed(MISSING_MESSAGE) from None
    parts = text.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthenticationFailed(MISSING_MESSAGE)
    return parts[1]


def authorization_values(headers: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """Every Authorization header value of an ASGI header list."""
    return [value for name, value in headers if name.lower() == b"authorization"]
