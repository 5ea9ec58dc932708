"""``akener db …``: schema migrations, pruning old rows, backups."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from akener.cli.common import find_installation, in_transaction, load_settings
from akener.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from akener.retention.service import PruneResult
    from akener.settings import Settings

app = typer.Typer(
    help="Database commands: schema, pruning, backup.", no_args_is_help=True, rich_markup_mode=None
)


def migrate(settings: Settings) -> None:
    """Upgrade the configured database to the newest schema; a newer one is left, with a warning."""

    # Imported here: Alembic is slow to import and most commands never migrate.
    from akener.db.engine import engine_for
    from akener.db.migrate import upgrade as run_upgrade

    async def _run() -> str | None:
        engine = engine_for(settings, migrations=True)
        try:
            return await run_upgrade(engine)
        finally:
            await engine.dispose()

    newer = asyncio.run(_run())
    if newer is not None:
        typer.echo(
            f"warning: the database schema ({newer}) is newer than this akener knows; left as it"
            " is. Fine during a rolling upgrade (docs/operations.md); upgrade akener here soon.",
            err=True,
        )


@app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the database schema to the newest version."""
    installation = find_installation()
    installation.prepare_database_file()
    migrate(installation.settings)
    typer.echo("Database schema is up to date.", err=True)


@app.command("prune")
def prune() -> None:
    """Delete audit events, usage days and ended sessions older than their retention now."""
    from akener.db.base import utcnow
    from akener.retention import service

    settings = load_settings()
    policy = service.RetentionPolicy.of(settings)

    async def work(session: AsyncSession) -> PruneResult:
        return await service.prune(session, policy, now=utcnow())

    result = in_transaction(settings, work)
    typer.echo(
        f"Pruned {result.audit_events} audit events, {result.usage_days} usage days, "
        f"{result.ended_sessions} ended sessions, {result.login_failures} failed sign-ins "
        f"and {result.events} delivered events.",
        err=True,
    )


@app.command("backup")
def backup(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="The new file to write (must not exist).")
    ],
) -> None:
    """Copy a SQLite database consistently, even while akener runs (PostgreSQL: pg_dump)."""
    import sqlite3

    from sqlalchemy.engine import make_url

    settings = load_settings()
    if not settings.is_sqlite:
        raise InvalidInput(
            "'akener db backup' copies SQLite databases; on PostgreSQL use pg_dump "
            "(docs/operations.md, 'Backup and restore')"
        )
    source = make_url(settings.database_url).database
    if not source or source == ":memory:" or not Path(source).is_file():
        raise InvalidInput(
            f"no SQLite database at {source or '(memory)'}; check AKENER_DATABASE_URL"
        )
    if path.exists():
        raise InvalidInput(f"{path} already exists; give a new file name")
    if Path(source).resolve() == path.resolve():
        raise InvalidInput("the backup must go to another file than the database")
    # The online backup API copies a consistent snapshot page by page while other processes
    # keep reading and writing (https://sqlite.org/backup.html).
    src = sqlite3.connect(f"file:{Path(source).resolve()}?mode=ro", uri=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # owner only, never clobber
        os.close(fd)
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)
            ok = dst.execute("PRAGMA integrity_check").fetchone()
        finally:
            dst.close()
    except sqlite3.Error as exc:
        path.unlink(missing_ok=True)
        raise InvalidInput(f"backup failed: {exc}") from None
    finally:
        src.close()
    if not ok or ok[0] != "ok":
        path.unlink(missing_ok=True)
        raise InvalidInput("the copy failed its integrity check; nothing was kept")
    typer.echo(
        f"Backed up {source} to {path}. Keep the server secret (AKENER_SECRET_KEY, in .env) "
        "with it: without the secret no key in the backup can be verified.",
        err=True,
    )
