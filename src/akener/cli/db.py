"""``akener db …``: schema migrations."""

from __future__ import annotations

import asyncio

import typer

from akener.cli.common import find_installation
from akener.db.engine import engine_for
from akener.settings import Settings

app = typer.Typer(help="Database schema commands.", no_args_is_help=True)


def migrate(settings: Settings) -> None:
    """Upgrade the configured database to the newest schema."""

    # Imported here: Alembic is slow to import and most commands never migrate.
    from akener.db.migrate import upgrade as run_upgrade

    async def _run() -> None:
        engine = engine_for(settings)
        try:
            await run_upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(_run())


@app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the database schema to the newest version."""
    installation = find_installation()
    installation.prepare_database_file()
    migrate(installation.settings)
    typer.echo("Database schema is up to date.", err=True)
