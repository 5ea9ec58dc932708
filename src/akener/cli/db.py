"""``akener db …``: schema migrations."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from akener.cli.common import load_settings

if TYPE_CHECKING:
    from akener.settings import Settings

app = typer.Typer(help="Database schema commands.", no_args_is_help=True, rich_markup_mode=None)


def migrate(settings: Settings) -> None:
    """Upgrade the configured database to the newest schema."""

    # Imported here: Alembic is slow to import and most commands never migrate.
    from akener.db.engine import make_engine
    from akener.db.migrate import upgrade as run_upgrade

    async def _run() -> None:
        engine = make_engine(settings.database_url)
        try:
            await run_upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(_run())


@app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the database schema to the newest version."""
    settings = load_settings()
    migrate(settings)
    typer.echo("Database schema is up to date.", err=True)
