"""Password hashing with Argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from akener.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024  # a bound, so nobody makes the server hash a megabyte

_HASHER = PasswordHasher()  # Argon2id; stateless and thread-safe
# Verified against when the email is unknown, so a wrong email costs as much as a wrong password.
_DUMMY_HASH = _HASHER.hash("akener-dummy-password-for-timing")


def check_strength(password: str) -> None:
    """Refuse passwords too short or absurdly long."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"the password must be at least {MIN_LENGTH} characters long", field="password"
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"the password must be at most {MAX_LENGTH} characters long", field="password"
        )


async def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``, computed off the event loop."""
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; None (unknown user) costs the same and fails."""
    if len(password) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` was made with weaker parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return False
