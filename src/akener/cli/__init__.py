"""The ``akener`` command: one Typer app, each concern adds its commands."""

from __future__ import annotations

import sys

import typer

from akener.cli import audit, db, keys, serve, users
from akener.errors import AkenerError
from akener.textsafe import printable

app = typer.Typer(
    name="akener",
    help="Self-hosted API key service. Run 'akener serve' to start it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
        typer.echo(f"error: {printable(exc.message)}", err=True)
        sys.exit(1)
