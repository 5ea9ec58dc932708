"""Small factories: make exactly the rows a test needs."""

from __future__ import annotations

from akener.accounts.permissions import ALL_PERMISSIONS, CLI_PRINCIPAL
from akener.keys import service
from akener.keys.models import ApiKey, KeyStatus
from akener.runtime import Runtime


async def make_key(
    runtime: Runtime,
    name: str = "Test key",
    *,
    scopes: list[str] | tuple[str, ...] = ALL_PERMISSIONS,
    status: KeyStatus = KeyStatus.ACTIVE,
) -> tuple[ApiKey, str]:
    """A key created the way the CLI creates one; returns the row and its plaintext."""
    async with runtime.sessionmaker() as session:
        row, plaintext = await service.create_key(
            session, CLI_PRINCIPAL, name=name, scopes=list(scopes), peppers=runtime.peppers
        )
        if status is not KeyStatus.ACTIVE:
            row = await service.set_key_status(session, CLI_PRINCIPAL, row.id, status)
        await session.commit()
    return row, plaintext


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}
