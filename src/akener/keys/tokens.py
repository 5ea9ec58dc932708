"""Pure functions on key strings: generate, check the format, digest, mask.

No database, no settings: everything this module needs is passed in. The scheme and its limits
are written down in docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

PREFIX = "akener_"
SECRET_BYTES = 32
KEY_LENGTH = len(PREFIX) + 2 * SECRET_BYTES  # 71
VISIBLE_TAIL = 4
TABLE_TAIL = 32
MASK_CHAR = "*"

_KEY_RE = re.compile(r"akener_[0-9a-f]{64}")
# Sub-key label: the configured secret also signs sessions, so the pepper is derived, not reused.
_PEPPER_LABEL = b"akener/api-key-digest/v"


def generate_key() -> str:
    """A new key: the prefix and 32 bytes from the OS CSPRNG as lowercase hex."""
    return PREFIX + secrets.token_bytes(SECRET_BYTES).hex()


def is_well_formed(value: str) -> bool:
    """True only for ``akener_`` followed by exactly 64 lowercase hex characters."""
    return len(value) == KEY_LENGTH and _KEY_RE.fullmatch(value) is not None


def derive_pepper(secret: bytes, version: int) -> bytes:
    """The HMAC key for one pepper version, derived from the configured secret."""
    return hmac.new(secret, _PEPPER_LABEL + str(version).encode(), hashlib.sha256).digest()


def digest(key: str, pepper: bytes) -> str:
    """Keyed digest stored in place of the key: HMAC-SHA256(pepper, key), hex."""
    return hmac.new(pepper, key.encode("ascii"), hashlib.sha256).hexdigest()


def digester(pepper: bytes) -> Callable[[str], str]:
    """``digest`` with ``pepper`` fixed: the keyed HMAC state is built once and copied per call,
    which skips re-deriving the padded key on every request (same result as ``digest``)."""
    keyed = hmac.new(pepper, digestmod=hashlib.sha256)

    def digest_with_pepper(key: str) -> str:
        state = keyed.copy()
        state.update(key.encode("ascii"))
        return state.hexdigest()

    return digest_with_pepper


def mask(key: str) -> str:
    """Same length as the key; only the prefix and the last four characters stay visible."""
    if not is_well_formed(key):
        raise ValueError("not an akener key")
    hidden = KEY_LENGTH - len(PREFIX) - VISIBLE_TAIL
    return PREFIX + MASK_CHAR * hidden + key[-VISIBLE_TAIL:]


def table_tail(masked: str) -> str:
    """What the keys table shows: the last 32 characters of the masked value."""
    return masked[-TABLE_TAIL:]
