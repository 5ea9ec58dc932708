"""What one running process owns: engine, sessions, peppers, verifier. Made in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from akener.db.engine import make_engine, make_sessionmaker
from akener.db.migrate import current_revision, head_revision
from akener.errors import InvalidInput
from akener.keys.events import install_listeners
from akener.keys.peppers import Peppers
from akener.settings import Settings
from akener.verify.service import Verifier


@dataclass
class Runtime:
    """Per-process resources shared by every request."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    peppers: Peppers
    verifier: Verifier

    @classmethod
    async def start(cls, settings: Settings, *, check_schema: bool = True) -> Runtime:
        """Open the database and build the verifier; refuse to run on an unmigrated schema."""
        secrets_by_version = settings.peppers()
        if settings.secret_key_version not in secrets_by_version:
            raise InvalidInput("AKENER_SECRET_KEY is not set")
        peppers = Peppers.from_secrets(secrets_by_version, settings.secret_key_version)
        engine = make_engine(settings.database_url)
        if check_schema:
            revision, head = await current_revision(engine), head_revision()
            if revision != head:
                await engine.dispose()
                raise InvalidInput(
                    f"the database schema is at {revision or 'nothing'}, not {head}; "
                    "run 'akener db upgrade'"
                )
        sessionmaker = make_sessionmaker(engine)
        verifier = Verifier(sessionmaker, peppers)
        install_listeners(sessionmaker, [verifier.forget])
        return cls(settings, engine, sessionmaker, peppers, verifier)

    async def close(self) -> None:
        """Release the database connections."""
        await self.engine.dispose()
