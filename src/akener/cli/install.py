"""Getting an installation ready for ``akener serve``: database file, schema, server secret."""

from __future__ import annotations

import secrets

import typer

from akener.cli.common import in_transaction
from akener.cli.db import migrate
from akener.errors import InvalidInput
from akener.installation.home import Installation, locate, write_env_atomically
from akener.settings import Settings, secret_problem


async def _nothing(_session: object) -> None:
    """A transaction that only runs the secret check every command runs first."""


def refuse_unusable_secret(installation: Installation) -> None:
    """A set but weak secret, or none at all outside SQLite, stops ``serve`` before anything
    else (waiting for the database included): only a new SQLite installation gets one made."""
    settings = installation.settings
    problem = secret_problem(settings)
    if problem and (settings.secret_key is not None or not settings.is_sqlite):
        raise InvalidInput(f"{problem} (looked in {installation.env_file} and the environment)")


def prepare(installation: Installation) -> Settings:
    """Create or upgrade the database (private files) and check the secret against its keys.

    Only a new SQLite installation (no secret set, no key in the database) gets a generated
    secret, written atomically to its .env: never one over existing keys (a lost .env)."""
    settings = installation.settings
    refuse_unusable_secret(installation)
    installation.prepare_database_file()
    migrate(settings)
    if settings.secret_key is None:
        in_transaction(settings, _nothing)  # refuses when keys exist: their secret is lost
        write_env_atomically(installation.env_file, secrets.token_urlsafe(48))
        typer.echo(
            f"Generated a new AKENER_SECRET_KEY in {installation.env_file}. Keep it safe and"
            " back it up with the database: without it no existing key can be verified.",
            err=True,
        )
        settings = locate(installation.home).settings
    in_transaction(settings, _nothing)  # records the secret's fingerprint
    return settings
