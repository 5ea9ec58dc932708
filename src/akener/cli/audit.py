"""``akener audit export``: the audit log as CSV or JSON lines."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from akener.cli.common import in_transaction, load_settings, quiet_on_closed_pipe
from akener.errors import InvalidInput
from akener.textsafe import csv_cell

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from akener.audit.schemas import AuditEventRead

app = typer.Typer(help="Read the audit log.", no_args_is_help=True, rich_markup_mode=None)


class _Writer:
    """Writes events one at a time, so an export of any size needs little memory."""

    def __init__(self, fmt: str, out: TextIO, columns: list[str]) -> None:
        self.fmt, self.out, self.count = fmt, out, 0
        self.csv = csv.DictWriter(out, fieldnames=columns) if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writeheader()

    def write(self, row: AuditEventRead) -> None:
        self.count += 1
        data = row.model_dump(mode="json")
        if self.csv is None:
            # ensure_ascii: JSON escapes C0 controls but not DEL or C1 (\x9b starts a terminal
            # command too); as \uXXXX every one is data, and the line stays exact.
            self.out.write(json.dumps(data, ensure_ascii=True) + "\n")
            return
        data["changes"] = json.dumps(data["changes"]) if data["changes"] is not None else ""
        self.csv.writerow({k: csv_cell(v) if isinstance(v, str) else v for k, v in data.items()})


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor, e.g. user:<id>, key:<id>, cli.")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. key.deactivated.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only this object id, or type (key, user, role).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this ISO 8601 date or time (UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this ISO 8601 date or time.")] = None,
) -> None:
    """Export audit events, newest first."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.audit import service
    from akener.audit.schemas import AuditEventRead, AuditFilters

    if fmt not in ("csv", "jsonl"):
        raise InvalidInput("--format must be csv or jsonl")
    filters = AuditFilters.parse(
        actor=actor, action=action, target=target, since=since, until=until
    )
    settings = load_settings()

    with contextlib.ExitStack() as stack:
        if output is None:
            stack.enter_context(quiet_on_closed_pipe())
        out = (
            sys.stdout
            if output is None
            else stack.enter_context(output.open("w", newline="", encoding="utf-8"))
        )
        writer = _Writer(fmt, out, list(AuditEventRead.model_fields))

        async def work(session: AsyncSession) -> None:
            async for event in service.iter_events(session, CLI_PRINCIPAL, filters):
                writer.write(AuditEventRead.model_validate(event))

        in_transaction(settings, work)
    typer.echo(f"Exported {writer.count} audit events.", err=True)
