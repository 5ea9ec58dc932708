"""``akener keys update`` and scope names at the CLI, on every database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import update

from akener.db.engine import make_engine
from akener.keys.models import ApiKey
from tests.conftest import TEST_SECRET
from tests.integration.test_serve import run_cli


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AKENER_DATABASE_URL", database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", TEST_SECRET)


@pytest.mark.usefixtures("cli_env")
def test_unknown_names_in_akener_namespaces_are_refused_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        monkeypatch, capsys, "keys", "create", "--name", "x", "--scope", "api_keys.reed"
    )
    assert (code, out) == (1, "")
    assert err.strip() == "error: unknown scope api_keys.reed; did you mean api_keys.read?"
    code, out, _ = run_cli(
        monkeypatch, capsys, "keys", "create", "--name", "y", "--scope", "incidents.reed"
    )
    assert code == 0 and out.startswith("akener_")  # custom scopes stay free-form


async def _suspend(database_url: str, key_id: str, names: list[str]) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            stmt = update(ApiKey).where(ApiKey.id == key_id).values(suspended_scopes=names)
            await conn.execute(stmt)
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("cli_env")
def test_keys_update_replaces_scopes_and_expiry_and_grants_suspended_names_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    code, out, _ = run_cli(
        monkeypatch, capsys, "keys", "create", "--name", "old", "--scope", "webhooks.read",
        "--expires-in", "2d", "--json",
    )  # fmt: skip
    assert code == 0
    key_id = json.loads(out)["id"]
    asyncio.run(_suspend(database_url, key_id, ["webhooks.read"]))
    listed = json.loads(run_cli(monkeypatch, capsys, "keys", "list", "--json")[1])
    assert listed["suspended_scopes"] == ["webhooks.read"]
    code, _, err = run_cli(
        monkeypatch, capsys, "keys", "update", key_id, "--scope", "webhooks.read",
        "--scope", "deploy.run", "--never-expires",
    )  # fmt: skip
    assert code == 0, err
    stored = json.loads(run_cli(monkeypatch, capsys, "keys", "list", "--json")[1])
    assert stored["scopes"] == ["webhooks.read", "deploy.run"]
    assert stored["suspended_scopes"] == [] and stored["expires_at"] is None
    for args, message in (
        (["--scope", "metrics.reed"], "did you mean metrics.read?"),
        ([], "give --name, --scope"),
        (["--never-expires", "--expires-in", "2d"], "give one of"),
    ):
        code, out, err = run_cli(monkeypatch, capsys, "keys", "update", key_id, *args)
        assert code == 1 and out == "" and message in err, (args, err)
