"""The server secret against the installation: never locked out in silence.

The database keeps, per secret version, ``HMAC-SHA256(secret, constant)``: enough to tell
whether a configured secret is the one keys were made with, useless for finding the secret.
A configured secret that matches none of the versions existing keys depend on is refused
before anything runs, with a line that says what to do, instead of every key failing.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from akener.errors import InvalidInput
from akener.installation.models import SecretFingerprint
from akener.installation.repository import SecretRepository

_LABEL = b"akener/server-secret-fingerprint/v"


def fingerprint(secret: bytes, version: int) -> str:
    """The keyed digest of a constant that the database keeps for one secret version."""
    return hmac.new(secret, _LABEL + str(version).encode(), hashlib.sha256).hexdigest()


class SecretMismatch(InvalidInput):
    """The configured server secret is not the one this installation's keys were made with."""


def mismatch_message(problem: str, where: str) -> str:
    """The one line an operator sees, with what to do."""
    return (
        f"{problem}; every existing key would be refused. Restore AKENER_SECRET_KEY (and "
        f"AKENER_SECRET_KEY_VERSION, AKENER_OLD_SECRET_KEYS) from your backup of {where}; "
        "when rotating, keep the previous secret in AKENER_OLD_SECRET_KEYS under its version"
    )


async def has_keys(session: AsyncSession) -> bool:
    """True when any key depends on a server secret."""
    return bool(await SecretRepository(session).versions_in_use())


async def check_secrets(
    session: AsyncSession, secrets_by_version: dict[int, bytes], where: str
) -> None:
    """Refuse a secret that existing keys were not made with; record the new versions' prints.

    A version is in conflict when keys depend on it, its fingerprint is stored, and the secret
    configured for it differs. The installation is locked out when keys exist and not one of the
    versions they depend on is configured with its recorded secret.
    """
    repo = SecretRepository(session)
    stored = await repo.fingerprints()
    in_use = await repo.versions_in_use()
    if in_use and not secrets_by_version:
        raise SecretMismatch(
            mismatch_message(
                f"no server secret is set (AKENER_SECRET_KEY) but {sum(in_use.values())} key(s)"
                " were made with one, so akener will not generate a new one",
                where,
            )
        )
    given = {v: fingerprint(s, v) for v, s in secrets_by_version.items()}
    wrong = sorted(
        v
        for v in in_use
        if v in stored and v in given and not hmac.compare_digest(given[v], stored[v].fingerprint)
    )
    if wrong:
        raise SecretMismatch(
            mismatch_message(
                f"the configured server secret for version {wrong[0]} is not the one "
                f"{in_use[wrong[0]]} key(s) were made with",
                where,
            )
        )
    usable = [
        v for v in in_use if v in given and (v not in stored or given[v] == stored[v].fingerprint)
    ]
    if in_use and not usable:
        versions = ", ".join(str(v) for v in sorted(in_use))
        raise SecretMismatch(
            mismatch_message(
                f"no configured server secret matches this installation's keys"
                f" (made with secret version {versions})",
                where,
            )
        )
    for version, print_ in given.items():
        row = stored.get(version)
        if row is None:
            await repo.add(SecretFingerprint(version=version, fingerprint=print_))
        elif row.fingerprint != print_:
            # No key depends on this version (checked above): the new secret takes its place.
            row.fingerprint = print_
    await session.flush()
