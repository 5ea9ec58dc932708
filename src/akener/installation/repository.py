"""Reads and writes of the secret fingerprints; never commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.installation.models import SecretFingerprint
from akener.keys.models import ApiKey


class SecretRepository:
    """The stored fingerprints and the secret versions keys depend on."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def fingerprints(self) -> dict[int, SecretFingerprint]:
        """Every stored fingerprint by version."""
        rows = await self.session.scalars(select(SecretFingerprint))
        return {row.version: row for row in rows}

    async def versions_in_use(self) -> dict[int, int]:
        """How many keys (current or grace-period secret) depend on each version."""
        used: dict[int, int] = {}
        for column in (ApiKey.pepper_version, ApiKey.previous_pepper_version):
            stmt = select(column, func.count()).where(column.is_not(None)).group_by(column)
            for version, count in (await self.session.execute(stmt)).all():
                if version is not None:
                    used[version] = used.get(version, 0) + int(count)
        return used

    async def add(self, row: SecretFingerprint) -> None:
        """Insert a fingerprint."""
        self.session.add(row)
        await self.session.flush()
