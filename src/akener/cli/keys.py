"""``akener keys …``: the trusted bootstrap for keys (the operator holds the database)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from akener.cli.common import (
    in_transaction,
    load_settings,
    parse_duration,
    parse_instant,
    quiet_on_closed_pipe,
)
from akener.cli.limit_options import (
    AllowIpOpt,
    CreditsOpt,
    OwnerOpt,
    RefillOpt,
    WindowOpt,
    describe,
    parse_credits,
    parse_window,
)
from akener.errors import InvalidInput
from akener.textsafe import printable

if TYPE_CHECKING:
    # Imported inside the commands at run time: they pull in SQLAlchemy (bench/cli_startup.py).
    from sqlalchemy.ext.asyncio import AsyncSession

    from akener.keys.models import ApiKey
    from akener.keys.peppers import Peppers
    from akener.keys.schemas import KeyRead
    from akener.settings import Settings

app = typer.Typer(
    help="Create, list, switch on/off and delete API keys.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _peppers(settings: Settings) -> Peppers:
    from akener.keys.peppers import Peppers

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
    owner_id: OwnerOpt = None,
    rate_limit: WindowOpt = None,
    credits: CreditsOpt = None,
    refill: RefillOpt = None,
    allow_ip: AllowIpOpt = None,
) -> None:
    """Create a key. Its plaintext alone goes to stdout: save it, it is never shown again."""
    from pydantic import ValidationError

    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.keys import service
    from akener.keys.schemas import KeyCreate, KeyCreated

    if expires_in is not None and expires_at is not None:
        raise InvalidInput("give --expires-in or --expires-at, not both")
    expiry = parse_instant(expires_at, "--expires-at") if expires_at else None
    if expires_in is not None:
        expiry = datetime.now(UTC) + parse_duration(expires_in, "--expires-in")
    windows = [parse_window(w) for w in rate_limit or []]
    credit = parse_credits(credits, refill)
    try:
        body = KeyCreate(
            name=name,
            scopes=scope or [],
            expires_at=expiry,
            owner_id=owner_id,
            allowed_ips=allow_ip or [],
        )
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
            owner_id=body.owner_id,
            rate_limits=windows,
            credits=credit,
            allowed_ips=body.allowed_ips,
        )

    row, plaintext = in_transaction(settings, work)
    if as_json:
        created = KeyCreated.of(row, plaintext)
        typer.echo(created.model_dump_json())
    else:
        typer.echo(plaintext)
    typer.echo(
        f"Created key {row.name!r} (id {row.id}; {describe(row)}). Save it now: it cannot be"
        " shown again.",
        err=True,
    )


@app.command("list")
def list_(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines, one key each.")
    ] = False,
) -> None:
    """List keys, newest first."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.db.base import utcnow
    from akener.keys import service, tokens
    from akener.keys.schemas import KeyRead

    settings = load_settings()

    async def work(session: AsyncSession) -> list[tuple[KeyRead, list[int]]]:
        rows, cursor = await service.list_keys(session, CLI_PRINCIPAL, limit=service.MAX_PAGE)
        found = list(rows)
        while cursor is not None:
            rows, cursor = await service.list_keys(
                session, CLI_PRINCIPAL, limit=service.MAX_PAGE, cursor=cursor
            )
            found.extend(rows)
        now = utcnow()
        return [(KeyRead.model_validate(r), _secret_versions(r, now)) for r in found]

    listed = in_transaction(settings, work)
    with quiet_on_closed_pipe():  # `akener keys list | head` ends quietly
        _print_keys(listed, as_json=as_json, table_tail=tokens.table_tail)


def _print_keys(
    listed: list[tuple[KeyRead, list[int]]], *, as_json: bool, table_tail: Callable[[str], str]
) -> None:
    if as_json:
        for key, versions in listed:
            typer.echo(json.dumps(key.model_dump(mode="json") | {"secret_versions": versions}))
        return
    if not listed:
        typer.echo("No keys yet. Create one with: akener keys create --name NAME", err=True)
        return
    now = datetime.now(UTC)
    typer.echo(
        f"{'ID':32}  {'STATUS':8}  {'KEY':32}  {'LAST USED (UTC)':19}  {'EXPIRES (UTC)':19}  "
        f"{'SECRET':6}  {'REQUESTS':>9}  NAME"
    )
    for key, versions in listed:
        status = "EXPIRED" if key.expires_at and key.expires_at <= now else key.status
        typer.echo(
            f"{key.id:32}  {status:8}  {table_tail(key.masked_key):32}  "
            f"{_when(key.last_used_at, 'never'):19}  {_when(key.expires_at, '-'):19}  "
            f"{'+'.join(f'v{v}' for v in versions):6}  {key.request_count:>9}  "
            f"{printable(key.name)}"
        )


def _secret_versions(row: ApiKey, now: datetime) -> list[int]:
    """The server secret versions a key's live digests were made with: ``[2]``, or ``[2, 1]``
    while a rotated-out secret digested under version 1 is in its grace period."""
    versions = [row.pepper_version]
    if row.previous_pepper_version is not None and row.previous_secret_valid(now):
        versions.append(row.previous_pepper_version)
    return list(dict.fromkeys(versions))


def _when(value: datetime | None, empty: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else empty


def _set_status(key_id: str, status: str) -> None:
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.keys import service
    from akener.keys.models import KeyStatus

    settings = load_settings()

    async def work(session: AsyncSession) -> ApiKey:
        return await service.set_key_status(session, CLI_PRINCIPAL, key_id, KeyStatus(status))

    row = in_transaction(settings, work)
    typer.echo(f"Key {row.name!r} ({row.id}) is now {row.status}.", err=True)


@app.command("activate")
def activate(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Switch a key on."""
    _set_status(key_id, "ACTIVE")


@app.command("deactivate")
def deactivate(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Switch a key off: it is refused from now on, and can be switched on again."""
    _set_status(key_id, "INACTIVE")


@app.command("leaked")
def leaked(
    key_id: Annotated[str, typer.Argument(metavar="ID")],
    url: Annotated[str | None, typer.Option("--url", help="Where the key was found.")] = None,
) -> None:
    """Report a key as leaked: deactivated (or only announced, AKENER_ON_LEAK=notify),
    audited as key.leaked and sent to webhooks."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.leaks.service import report_leak

    settings = load_settings()

    async def work(session: AsyncSession) -> ApiKey:
        return await report_leak(session, CLI_PRINCIPAL, key_id, url=url, on_leak=settings.on_leak)

    key = in_transaction(settings, work)
    typer.echo(f"Reported key {key.name!r} as leaked; it is now {key.status}.", err=True)


@app.command("update")
def update(
    key_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="The key's scopes from now on, all of them (repeat); listing a suspended one"
            " grants it again.",
        ),
    ] = None,
    no_scopes: Annotated[
        bool, typer.Option("--no-scopes", help="Take every scope away from the key.")
    ] = False,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Expire after this long from now: 90d, 12h.")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="Expire at this ISO 8601 date or time.")
    ] = None,
    never_expires: Annotated[
        bool, typer.Option("--never-expires", help="Clear the key's expiry.")
    ] = False,
    owner_id: OwnerOpt = None,
    no_owner: Annotated[
        bool, typer.Option("--no-owner", help="Take the key from its owner.")
    ] = False,
    rate_limit: Annotated[
        list[str] | None,
        typer.Option(
            "--rate-limit",
            help="The key's windows from now on, all of them: NAME=LIMIT/PERIOD (repeat).",
        ),
    ] = None,
    no_rate_limits: Annotated[
        bool, typer.Option("--no-rate-limits", help="Remove every rate-limit window.")
    ] = False,
    credits: CreditsOpt = None,
    refill: RefillOpt = None,
    unlimited_credits: Annotated[
        bool, typer.Option("--unlimited-credits", help="Remove the key's credits limit.")
    ] = False,
    allow_ip: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-ip", help="The allowed CIDR blocks from now on, all of them (repeat)."
        ),
    ] = None,
    any_ip: Annotated[
        bool, typer.Option("--any-ip", help="Allow the key from any address.")
    ] = False,
) -> None:
    """Rename a key, replace its scopes, or set or clear its expiry (the operator may grant any)."""
    from pydantic import ValidationError

    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.db.base import utcnow
    from akener.keys import service
    from akener.keys.schemas import KeyUpdate

    if sum(map(bool, (expires_in, expires_at, never_expires))) > 1:
        raise InvalidInput("give one of --expires-in, --expires-at and --never-expires")
    if scope and no_scopes:
        raise InvalidInput("give --scope or --no-scopes, not both")
    expiry: datetime | service.Unset | None = service.UNSET
    if expires_at:
        expiry = parse_instant(expires_at, "--expires-at")
    elif expires_in:
        expiry = utcnow() + parse_duration(expires_in, "--expires-in")
    elif never_expires:
        expiry = None
    limits = _limit_changes(
        owner_id,
        no_owner,
        rate_limit,
        no_rate_limits,
        credits,
        refill,
        unlimited_credits,
        allow_ip,
        any_ip,
    )
    fields: dict[str, object] = {"name": name, "scopes": [] if no_scopes else scope}
    fields = {k: v for k, v in fields.items() if v is not None}
    if "owner_id" in limits:
        fields["owner_id"] = limits["owner_id"]
    if "allowed_ips" in limits:
        fields["allowed_ips"] = limits["allowed_ips"]
    if isinstance(expiry, service.Unset) and not fields and not limits:
        raise InvalidInput("give --name, --scope, --no-scopes, an expiry or a limit option")
    try:
        body = KeyUpdate.model_validate(
            fields if isinstance(expiry, service.Unset) else {**fields, "expires_at": expiry}
        )
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from None
    settings = load_settings()

    async def work(session: AsyncSession) -> ApiKey:
        return await service.update_key(
            session,
            CLI_PRINCIPAL,
            key_id,
            name=body.name,
            scopes=body.scopes,
            expires_at=expiry,
            owner_id=body.owner_id if "owner_id" in limits else service.UNSET,
            rate_limits=limits.get("rate_limits", service.UNSET),
            credits=limits.get("credits", service.UNSET),
            allowed_ips=body.allowed_ips if "allowed_ips" in limits else service.UNSET,
        )

    row = in_transaction(settings, work)
    scopes = ", ".join(row.scopes) or "none"
    until = row.expires_at.isoformat() if row.expires_at else "never"
    typer.echo(
        f"Updated key {row.name!r} ({row.id}): scopes {scopes}; expires {until}; {describe(row)}.",
        err=True,
    )


def _limit_changes(
    owner_id: str | None,
    no_owner: bool,
    rate_limit: list[str] | None,
    no_rate_limits: bool,
    credits: int | None,
    refill: str | None,
    unlimited_credits: bool,
    allow_ip: list[str] | None,
    any_ip: bool,
) -> dict[str, Any]:
    """The limit fields ``keys update`` was asked to set (absent: unchanged)."""
    for given, clear, names in (
        (owner_id is not None, no_owner, "--owner-id or --no-owner"),
        (bool(rate_limit), no_rate_limits, "--rate-limit or --no-rate-limits"),
        (credits is not None, unlimited_credits, "--credits or --unlimited-credits"),
        (bool(allow_ip), any_ip, "--allow-ip or --any-ip"),
    ):
        if given and clear:
            raise InvalidInput(f"give {names}, not both")
    found: dict[str, Any] = {}
    if owner_id is not None or no_owner:
        found["owner_id"] = owner_id
    if rate_limit or no_rate_limits:
        found["rate_limits"] = [parse_window(w) for w in rate_limit or []]
    if credits is not None or unlimited_credits or refill is not None:
        found["credits"] = parse_credits(credits, refill)
    if allow_ip or any_ip:
        found["allowed_ips"] = list(allow_ip or [])
    return found


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
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.keys import service
    from akener.keys.schemas import MAX_GRACE_SECONDS, KeyCreated

    longest = timedelta(seconds=MAX_GRACE_SECONDS)
    seconds = int(
        parse_duration(grace, "--grace", allow_zero=True, maximum=longest).total_seconds()
    )
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
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.keys import service

    if not yes:
        typer.confirm(f"Delete key {key_id} permanently? This cannot be undone.", abort=True)
    settings = load_settings()

    async def work(session: AsyncSession) -> ApiKey:
        return await service.delete_key(session, CLI_PRINCIPAL, key_id)

    row = in_transaction(settings, work)
    typer.echo(f"Deleted key {row.name!r} ({row.id}).", err=True)
