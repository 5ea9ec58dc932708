"""Operator traps in the CLI: durations need a unit, a closed pipe ends quietly, help is fast."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.db.engine import begin_write, make_engine, make_sessionmaker
from akener.keys import service
from akener.keys.peppers import Peppers
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.servers import AKENER, akener_cli, akener_env


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> tuple[dict[str, str], Path]:
    env = akener_env(f"sqlite:///{tmp_path}/k.db", TEST_SECRET)
    assert akener_cli(env, tmp_path, "db", "upgrade").returncode == 0
    return env, tmp_path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["keys", "create", "--name", "a", "--expires-in", "90"], "needs a unit"),
        (["keys", "create", "--name", "a", "--expires-in", ""], "is empty"),
        (["keys", "create", "--name", "a", "--expires-in", "0"], "needs a unit"),
        (["keys", "create", "--name", "a", "--expires-in", "-3d"], "not a duration"),
        (["keys", "create", "--name", "a", "--expires-in", "999999999w"], "at most"),
        (["keys", "rotate", "some-id", "--grace", "60"], "or 0 for none"),
        (["keys", "rotate", "some-id", "--grace", "8d"], "at most 7 days"),
    ],
)
def test_cli_durations_need_a_unit(
    sqlite_dir: tuple[dict[str, str], Path], args: list[str], words: str
) -> None:
    env, cwd = sqlite_dir
    result = akener_cli(env, cwd, *args)
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_cli_grace_zero_still_means_none(sqlite_dir: tuple[dict[str, str], Path]) -> None:
    env, cwd = sqlite_dir
    made = akener_cli(env, cwd, "keys", "create", "--name", "z", "--expires-in", "4w", "--json")
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.split('"id":"')[1].split('"')[0]
    rotated = akener_cli(env, cwd, "keys", "rotate", key_id, "--grace", "0")
    assert rotated.returncode == 0, rotated.stderr
    assert "the old one is refused now" in rotated.stderr


async def _many_audit_events(settings: Settings, count: int) -> None:
    engine = make_engine(settings.database_url)
    peppers = Peppers.from_secrets(settings.peppers(), settings.secret_key_version)
    try:
        async with make_sessionmaker(engine)() as session:
            await begin_write(session)
            for number in range(count):
                await service.create_key(
                    session, CLI_PRINCIPAL, name=f"key {number:04}", scopes=[], peppers=peppers
                )
            await session.commit()
    finally:
        await engine.dispose()


def test_audit_export_into_a_closed_pipe_ends_quietly(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # Far more than a pipe's 64 KiB buffer, so the export is still writing when the reader goes.
    asyncio.run(_many_audit_events(settings, 600))
    env = akener_env(database_url, TEST_SECRET)
    with subprocess.Popen(
        [*AKENER, "audit", "export", "--format", "jsonl"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as export:
        assert export.stdout is not None and export.stderr is not None
        first = export.stdout.readline()
        assert first.startswith(b'{"id"')
        export.stdout.close()  # the reader goes away, as `| head -n 1` does
        status = export.wait(timeout=60)
        err = export.stderr.read().decode()
    assert status in (0, 141), (status, err)
    assert "Traceback" not in err and "error" not in err.lower(), err


def test_audit_export_into_head_in_a_shell(sqlite_dir: tuple[dict[str, str], Path]) -> None:
    env, cwd = sqlite_dir
    for number in range(3):
        assert akener_cli(env, cwd, "keys", "create", "--name", f"k{number}").returncode == 0
    command = " ".join([*AKENER, "audit", "export"]) + " | head -n 2; exit ${PIPESTATUS[0]}"
    result = subprocess.run(
        ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode in (0, 141), result
    assert result.stdout.startswith("id,") and len(result.stdout.splitlines()) == 2
    assert "Traceback" not in result.stderr and "error" not in result.stderr.lower()


def test_importing_the_cli_loads_no_heavy_module() -> None:
    probe = (
        "import sys, akener.cli; "
        "print(' '.join(m for m in ('fastapi', 'sqlalchemy', 'granian', 'argon2', 'pydantic',"
        " 'starlette', 'uvicorn', 'jinja2', 'rich') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_help_renders_without_rich_or_the_services(tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom akener.cli import main\nsys.argv = ['akener', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', ' '.join(m for m in ('rich', 'sqlalchemy', 'pydantic') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Usage: akener" in result.stdout
    assert result.stdout.strip().endswith("LOADED"), result.stdout
