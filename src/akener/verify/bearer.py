"""Reading the Authorization header: ``Bearer <key>``, the scheme in any letter case."""

from __future__ import annotations

from collections.abc import Sequence

from akener.errors import AuthenticationFailed

MISSING_MESSAGE = "missing or malformed Authorization header; send 'Authorization: Bearer <key>'"
REJECTED_MESSAGE = "invalid API key"


def bearer_credential(value: bytes) -> str | None:
    """The credential of one ``Bearer <credential>`` header value; None for anything else."""
    parts = value.split()
    if len(parts) != 2 or parts[0].lower() != b"bearer" or not parts[1].isascii():
        return None
    return parts[1].decode("ascii")


def parse_bearer(values: Sequence[bytes]) -> str:
    """The credential of the one Authorization header in ``values``; AuthenticationFailed else."""
    credential = bearer_credential(values[0]) if len(values) == 1 else None
    if credential is None:
        raise AuthenticationFailed(MISSING_MESSAGE)
    return credential


def authorization_values(headers: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """Every Authorization header value of an ASGI header list."""
    return [value for name, value in headers if name.lower() == b"authorization"]
