"""docs/cli.md matches the CLI: every command, argument and option, and the defaults in --help."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from akener.cli import app

DOCS = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()


def leaves(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every runnable command under ``command``, with its path of names."""
    if hasattr(command, "commands"):
        found = []
        for name, sub in sorted(command.commands.items()):
            found += leaves(sub, (*path, name))
        return found
    return [(path, command)]


ROOT = typer.main.get_command(app)
COMMANDS = leaves(ROOT)


def section(path: tuple[str, ...]) -> str:
    """The part of docs/cli.md under the heading of ``akener <path>``."""
    heading = re.search(rf"^## `akener {' '.join(path)}( [A-Z]+)?`$", DOCS, re.MULTILINE)
    assert heading, f"docs/cli.md has no '## `akener {' '.join(path)}`' section"
    rest = DOCS[heading.end() :]
    following = re.search(r"^## ", rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


def test_global_options_are_documented() -> None:
    for param in ROOT.params:
        for opt in param.opts:
            assert f"`{opt}" in DOCS, opt


def test_the_tree_is_walked() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"serve", "keys create", "audit export", "db backup", "db prune"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_is_documented(path: tuple[str, ...], command: Any) -> None:
    text = section(path)
    for param in command.params:
        if param.param_type_name == "argument":
            assert (param.metavar or param.name.upper()) in DOCS, (path, param.name)
            continue
        for opt in param.opts:
            assert f"`{opt}" in text or f" {opt}" in text, f"{' '.join(path)}: {opt} undocumented"
        default = param.default
        if default not in (None, False) and not param.is_flag:
            assert f"`{default}`" in text, f"{' '.join(path)} {param.opts[0]}: default {default}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_shows_every_default(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    for param in command.params:
        if param.param_type_name != "option" or param.is_flag or param.required:
            continue
        if param.default is not None:
            assert f"[default: {param.default}]" in flat, (path, param.opts)
        elif "[default:" not in (param.help or ""):
            # No default means "not given"; the help must still say what happens then.
            assert param.help, (path, param.opts)
