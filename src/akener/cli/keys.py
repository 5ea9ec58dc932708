"""``akener keys …``: the trusted bootstrap for keys (the operator holds the database)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.cli.common import in_transaction, load_settings, parse_duration, parse_instant
from akener.db.base import utcnow
from akener.errors import InvalidInput
from akener.keys import service, tokens
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.schemas import KeyCreate, KeyCreated, KeyRead
from akener.settings import Settings
from akener.textsafe import printable

app = typer.Typer(help="Create, list, switch on/off and delete API keys.", no_args_is_help=True)


def _peppers(settings: Settings) -> Peppers:
    secrets_by_version = settings.peppers()
    if settings.secret_key_version not in secrets_by_version:
        raise InvalidInput("AKENER_SECRET_KEY is not set; run 'akener serve' once or set it")
    return Peppers.from_secrets(secrets_by_version, settings.secret_key_version)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What uses the key, e.g. 'GitHub Actions'.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope to grant; repeat for more.")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Expire after this long: 90d, 12h, 30m.")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="Expire at this ISO 8601 date or time.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new key as JSON.")] = False,
) -> None:
    """Create a key. Its plaintext alone goes to stdout: save it, it is never shown again."""
    if expires_in and expires_at:
        raise InvalidInput("give --expires-in or --expires-at, not both")
    expiry = parse_instant(expires_at, "--expires-at") if expires_at else None
    if expires_in:
        expiry = utcnow() + parse_duration(expires_in, "--expires-in")
    try:
        body = KeyCreate(name=name, scopes=scope or [], expires_at=expiry)
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from None
    settings = load_settings()
    peppers = _peppers(settings)

    async def work(session: AsyncSession) -> tuple[ApiKey, str]:
        return await service.create_key(
            session,
            CLI_PRINCIPAL,
            name=body.name,
            scopes=body.scopes,
            expires_at=body.expires_at,
            peppers=peppers,
        )

    row, plaintext = in_transaction(settings, work)
    if as_json:
        created = KeyCreated.of(row, plaintext)
        typer.echo(created.model_dump_json())
    else:
        typer.echo(plaintext)
    typer.echo(
        f"Created key {row.name!r} (id {row.id}). Save it now: it cannot be shown again.", err=True
    )


@app.command("list")
def list_(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines, one key each.")
    ] = False,
) -> None:
    """List keys, newest first."""
    settings = load_settings()

    async def work(session: AsyncSession) -> list[KeyRead]:
        rows, cursor = await service.list_keys(session, CLI_PRINCIPAL, limit=service.MAX_PAGE)
        found = list(rows)
        while cursor is not None:
            rows, cursor = await service.list_keys(
                session, CLI_PRINCIPAL, limit=service.MAX_PAGE, cursor=cursor
            )
            found.extend(rows)
        return [KeyRead.model_validate(r) for r in found]

    keys = in_transaction(settings, work)
    if as_json:
        for key in keys:
            typer.echo(key.model_dump_json())
        return
    if not keys:
        typer.echo("No keys yet. Create one with: akener keys create --name NAME", err=True)
        return
    now = utcnow()
    typer.echo(
        f"{'ID':32}  {'STATUS':8}  {'KEY':32}  {'LAST USED (UTC)':19}  {'EXPIRES (UTC)':19}  "
        f"{'REQUESTS':>9}  NAME"
    )
    for key in keys:
        status = "EXPIRED" if key.expires_at and key.expires_at <= now else key.status
        typer.echo(
            f"{key.id:32}  {status:8}  {tokens.table_tail(key.masked_key):32}  "
            f"{_when(key.last_used_at, 'never'):19}  {_when(key.expires_at, '-'):19}  "
            f"{key.request_count:>9}  {printable(key.name)}"
        )


def _when(value: datetime | None, empty: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else empty


def _set_status(key_id: str, status: KeyStatus) -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> ApiKey:
        return await service.set_key_status(session, CLI_PRINCIPAL, key_id, status)

    row = in_transaction(settings, work)
    typer.echo(f"Key {row.name!r} ({row.id}) is now {row.status}.", err=True)


@app.command("activate")
def activate(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Switch a key on."""
    _set_status(key_id, KeyStatus.ACTIVE)


@app.command("deactivate")
def deactivate(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Switch a key off: it is refused from now on, and can be switched on again."""
    _set_status(key_id, KeyStatus.INACTIVE)


@app.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(metavar="ID")],
    grace: Annotated[
        str,
        typer.Option(help="How long the old secret keeps working: 0, 30m, 24h, up to 7d."),
    ] = "0",
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON.")] = False,
) -> None:
    """Give a key a new secret (printed alone on stdout, once); same id, name and scopes."""
    seconds = int(parse_duration(grace, "--grace").total_seconds())
    settings = load_settings()
    peppers = _peppers(settings)

    async def work(session: AsyncSession) -> tuple[ApiKey, str]:
        return await service.rotate_key(
            session, CLI_PRINCIPAL, key_id, grace_period_seconds=seconds, peppers=peppers
        )

    row, plaintext = in_transaction(settings, work)
    if as_json:
        created = KeyCreated.of(row, plaintext)
        typer.echo(created.model_dump_json())
    else:
        typer.echo(plaintext)
    until = row.previous_valid_until
    old = (
        f"the old secret works until {until.isoformat()}" if until else "the old one is refused now"
    )
    typer.echo(f"Rotated key {row.name!r} ({row.id}): {old}. Save the new key now.", err=True)


@app.command("delete")
def delete(
    key_id: Annotated[str, typer.Argument(metavar="ID")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a key for good (consider 'deactivate' first)."""
    if not yes:
        typer.confirm(f"Delete key {key_id} permanently? This cannot be undone.", abort=True)
    settings = load_settings()

    async def work(session: AsyncSession) -> ApiKey:
        return await service.delete_key(session, CLI_PRINCIPAL, key_id)

    row = in_transaction(settings, work)
    typer.echo(f"Deleted key {row.name!r} ({row.id}).", err=True)
