"""The ``akener`` command: one Typer app, each concern adds its commands."""

from __future__ import annotations

import sys

import typer

from akener.cli import audit, db, keys, serve, users
from akener.errors import AkenerError

app = typer.Typer(
    name="akener",
    help="Self-hosted API key service. Run 'akener serve' to start it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rendering it with rich costs more than the rest of `akener --help` together.
    rich_markup_mode=None,
)
app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(users.app, name="users")


def main() -> None:
    """Entry point: an AkenerError becomes one line on stderr and exit status 1."""
    try:
        app()
    except AkenerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
