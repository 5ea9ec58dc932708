"""What people typed comes out safe: CSV cells never run as formulas, terminals never get escapes;
the CLI answers odd input with one ``error:`` line and exit status 1."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from akener.audit.models import AuditEvent
from akener.runtime import Runtime
from akener.textsafe import csv_cell, printable
from tests.conftest import TEST_SECRET
from tests.factories import csrf_of
from tests.integration.test_serve import run_cli

TYPED = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "a\x1b[31mred\x1b[0m",
    "b\x9b31m\x07",
    "c\u202eevil",
    "d\x7f",
]
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))] + ["\u202e"]


def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("AKENER_DATABASE_URL", database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", TEST_SECRET)


async def test_failed_sign_in_names_are_stored_as_typed_and_exported_safely(
    client: httpx.AsyncClient,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    database_url: str,
) -> None:
    for name in TYPED:
        csrf = csrf_of((await client.get("/login")).text)
        answer = await client.post(
            "/login", data={"email": name, "password": "wrong", "csrf_token": csrf}
        )
        assert answer.status_code in (401, 422), answer.text
    async with runtime.sessionmaker() as session:
        stored = set((await session.scalars(select(AuditEvent.target_name))).all())
    assert {n.lower() for n in TYPED} <= stored  # data, exactly as typed (emails are lowercased)

    _cli_env(monkeypatch, tmp_path, database_url)
    code, out, _ = await asyncio.to_thread(run_cli, monkeypatch, capsys, "audit", "export")
    assert code == 0
    assert not any(ch in out for ch in CONTROLS if ch not in "\r\n")
    rows = list(csv.DictReader(io.StringIO(out)))
    names = [r["target_name"] for r in rows]
    assert len(names) == len(TYPED)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert '\'=hyperlink("http://evil.example","x")' in names
    assert "a\\x1b[31mred\\x1b[0m" in names and "c\\u202eevil" in names

    code, out, _ = await asyncio.to_thread(
        run_cli, monkeypatch, capsys, "audit", "export", "--format", "jsonl"
    )
    assert code == 0 and not any(ch in out for ch in CONTROLS if ch != "\n")
    exact = {json.loads(line)["target_name"] for line in out.splitlines()}
    assert exact == {n.lower() for n in TYPED}  # JSON lines keep the exact value, escaped


def test_csv_cell_and_printable() -> None:
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("\t=1") == "'\\x09=1"
    assert csv_cell("\r-1") == "'\\x0d-1" and csv_cell("ok") == "ok"
    assert printable("x\x1b[2Jy\x9b\x00") == "x\\x1b[2Jy\\x9b\\x00"
    assert printable("café ✓") == "café ✓"


ODD_CLI = [
    ("audit", "export", "--since", "9999-12-31T23:59:59-23:59"),
    ("audit", "export", "--until", "0001-01-01T00:00:00+14:00"),
    ("audit", "export", "--actor", "a\x1b[2Jb"),
    ("keys", "create", "--name", "x", "--expires-at", "9999-12-31T23:59:59-23:59"),
    ("keys", "create", "--name", "x", "--expires-at", "0001-01-01T00:00:00+14:00"),
    ("keys", "create", "--name", "x", "--expires-in", "9" * 40 + "d"),
    ("keys", "create", "--name", "x", "--expires-in", "\u0661\u0662d"),
    ("keys", "create", "--name", "a\x1b[2Jb"),
    ("keys", "rotate", "0" * 32, "--grace", "9" * 30),
    ("keys", "rotate", "0" * 32, "--grace", "\uff11\uff12h"),
    ("keys", "activate", "\u0661" * 32),
    ("keys", "delete", "9" * 400, "--yes"),
]


@pytest.mark.parametrize("args", ODD_CLI, ids=[" ".join(a)[:50] for a in ODD_CLI])
def test_cli_answers_odd_input_with_one_error_line(
    args: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    database_url: str,
) -> None:
    _cli_env(monkeypatch, tmp_path, database_url)
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "\x1b" not in err
