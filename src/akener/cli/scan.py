"""``akener scan``: find akener keys in files or git history and tell which are live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from akener.cli.common import in_transaction, load_settings, quiet_on_closed_pipe

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from akener.leaks.scan import Finding


def scan(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders [default: the working directory].")
    ] = None,
    git: Annotated[
        bool, typer.Option("--git", help="Search every commit of the git repositories given.")
    ] = False,
    deactivate: Annotated[
        bool, typer.Option("--deactivate", help="Deactivate every live key found (as leaked).")
    ] = False,
) -> None:
    """Find akener_ keys and check each against this installation; exit 1 if one is live.

    Prints file:line, the key's name and status, and the key masked (never the key itself).
    """
    from akener.leaks.scan import find_in_git, find_in_paths

    roots = paths or [Path(".")]
    findings: list[Finding] = []
    for root in roots:
        findings += find_in_git(root) if git else find_in_paths([root])
    if not findings:
        typer.echo("No akener keys found.", err=True)
        return
    settings = load_settings()
    lines, live = in_transaction(settings, lambda s: _check(s, settings, findings, deactivate))
    with quiet_on_closed_pipe():
        for line in lines:
            typer.echo(line)
    typer.echo(
        f"{len(findings)} key(s) found, {live} live"
        + (" (deactivated)" if deactivate and live else ""),
        err=True,
    )
    if live:
        raise typer.Exit(1)


async def _check(
    session: AsyncSession, settings: object, findings: list[Finding], deactivate: bool
) -> tuple[list[str], int]:
    from akener.cli.keys import _peppers
    from akener.db.base import utcnow
    from akener.keys import tokens
    from akener.leaks.service import look_up, record_leak
    from akener.settings import Settings

    assert isinstance(settings, Settings)
    peppers, now = _peppers(settings), utcnow()
    lines, live = [], 0
    for finding in findings:
        found = await look_up(session, peppers, finding.key, now)
        name = found.key.name if found.key is not None else "(not a key of this installation)"
        lines.append(
            f"{finding.where}:{finding.line}: {name} {found.status} {tokens.mask(finding.key)}"
        )
        if found.live and found.key is not None:
            live += 1
            if deactivate:
                await record_leak(
                    session,
                    found.key,
                    actor="cli",
                    url=f"{finding.where}:{finding.line}",
                    source="akener scan",
                    on_leak="deactivate",
                    now=now,
                )
    return lines, live
