"""The verifier: key string in, key identity or a refusal out.

This is the hot path (DESIGN.md section 4). The format check runs before any digest or database
work; the lookup is by keyed digest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.accounts.permissions import Principal
from akener.db.base import utcnow
from akener.errors import AuthenticationFailed, ServiceUnavailable
from akener.keys import tokens
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository
from akener.verify.bearer import REJECTED_MESSAGE


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """What a check needs to know about an accepted key."""

    id: str
    name: str
    scopes: frozenset[str]

    @classmethod
    def from_row(cls, key: ApiKey) -> VerifiedKey:
        """Copy the fields the checks read out of a row."""
        return cls(id=key.id, name=key.name, scopes=frozenset(key.scopes))

    def principal(self, client: str | None = None) -> Principal:
        """The key acting on akener's own API: its scopes are its permissions."""
        return Principal(kind="key", id=self.id, permissions=self.scopes, client=client)


class Verifier:
    """Decides whether a key string is an ACTIVE key of this installation."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        peppers: Peppers,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._peppers = peppers
        self._clock = clock

    async def verify(self, key: str) -> VerifiedKey:
        """The key's identity, or AuthenticationFailed with the one generic message."""
        if not tokens.is_well_formed(key):
            raise AuthenticationFailed(REJECTED_MESSAGE)
        candidates = self._peppers.candidates(key)
        row = await self._lookup(candidates)
        now = self._clock()
        if row is None or row.status != KeyStatus.ACTIVE.value or row.is_expired(now):
            raise AuthenticationFailed(REJECTED_MESSAGE)
        if row.digest not in candidates and not row.previous_secret_valid(now):
            raise AuthenticationFailed(REJECTED_MESSAGE)  # a rotated-out secret past its grace
        return VerifiedKey.from_row(row)

    async def _lookup(self, digests: list[str]) -> ApiKey | None:
        try:
            async with self._sessionmaker() as session:
                return await KeyRepository(session).get_by_digests(digests)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise ServiceUnavailable("cannot reach the database to check the key") from exc

    def forget(self, key_ids: frozenset[str]) -> None:
        """Called after a commit that changed ``key_ids``; nothing is cached yet."""
