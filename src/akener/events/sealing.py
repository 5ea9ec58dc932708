"""Signing secrets at rest: sealed with AES-GCM under a key derived from the server secret.

Each sealed value records the server-secret version it was sealed with, so a server-secret
rotation (the old secret kept in AKENER_OLD_SECRET_KEYS) leaves every webhook working; the
sender reseals a secret under the current version the next time it uses it.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"akener webhook signing secrets v1"
_AAD = b"akener-webhook-secret"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


def new_signing_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class SealError(Exception):
    """A sealed secret cannot be opened: its server secret is gone or the value was altered."""


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals under the current server secret; opens under any configured one."""

    current: int
    keys: dict[int, bytes]

    @classmethod
    def from_secrets(cls, secrets_by_version: dict[int, bytes], current: int) -> SecretBox:
        """Derive one AES key per server-secret version."""
        derived = {
            version: HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
                secret
            )
            for version, secret in secrets_by_version.items()
        }
        return cls(current=current, keys=derived)

    def seal(self, plaintext: str) -> tuple[str, int]:
        """The sealed value and the version it was sealed under."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext.encode(), _AAD)
        return base64.b64encode(nonce + sealed).decode(), self.current

    def open(self, sealed: str, version: int) -> str:
        """The plaintext of ``sealed``; SealError when it cannot be opened."""
        key = self.keys.get(version)
        if key is None:
            raise SealError(f"server secret version {version} is not configured")
        raw = base64.b64decode(sealed)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _AAD).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError("a sealed webhook secret does not open") from exc
