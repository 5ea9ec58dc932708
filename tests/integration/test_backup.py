"""``akener db backup``: a consistent copy of a running SQLite installation that restores."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.factories import bearer
from tests.servers import AkenerServer, akener_cli, akener_env


def test_a_backup_taken_while_serving_restores_with_the_secret(tmp_path: Path) -> None:
    live, restored = tmp_path / "live", tmp_path / "restored"
    env = akener_env(None, None)  # the newcomer's setup: ./akener.db and a generated ./.env
    with AkenerServer(env, live) as server:
        made = akener_cli(env, live, "keys", "create", "--name", "Old key")
        assert made.returncode == 0, made.stderr
        old_key = made.stdout.strip()
        # Writes keep coming while the copy is taken.
        stop = threading.Event()

        def write() -> None:
            number = 0
            while not stop.is_set():
                akener_cli(env, live, "keys", "create", "--name", f"busy {number}")
                number += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            result = akener_cli(env, live, "db", "backup", str(tmp_path / "copy.db"))
        finally:
            stop.set()
            writer.join()
        assert result.returncode == 0, result.stderr
        assert "AKENER_SECRET_KEY" in result.stderr and ".env" in result.stderr
        assert httpx.get(server.url + "/api/v1/whoami", headers=bearer(old_key)).status_code == 200
    assert (tmp_path / "copy.db").stat().st_mode & 0o077 == 0  # owner only

    restored.mkdir()
    shutil.copy(tmp_path / "copy.db", restored / "akener.db")
    shutil.copy(live / ".env", restored / ".env")  # the secret travels with the backup
    with AkenerServer(env, restored) as server:
        answer = httpx.get(server.url + "/api/v1/whoami", headers=bearer(old_key))
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == "Old key"
        assert (
            httpx.get(
                server.url + "/api/v1/whoami", headers=bearer("akener_" + "0" * 64)
            ).status_code
            == 401
        )


def test_backup_refuses_to_overwrite_and_explains_postgresql(tmp_path: Path) -> None:
    env = akener_env(f"sqlite:///{tmp_path}/k.db", TEST_SECRET)
    assert akener_cli(env, tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "taken.db").write_text("mine")
    result = akener_cli(env, tmp_path, "db", "backup", str(tmp_path / "taken.db"))
    assert result.returncode == 1 and "already exists" in result.stderr
    assert (tmp_path / "taken.db").read_text() == "mine"
    missing = akener_env(f"sqlite:///{tmp_path}/none.db", TEST_SECRET)
    result = akener_cli(missing, tmp_path, "db", "backup", str(tmp_path / "b.db"))
    assert result.returncode == 1 and "no akener installation" in result.stderr
    assert not (tmp_path / "none.db").exists()  # a backup never creates a database
    pg = akener_env("postgresql://postgres@127.0.0.1:5432/unused", TEST_SECRET)
    result = akener_cli(pg, tmp_path, "db", "backup", str(tmp_path / "b.db"))
    assert result.returncode == 1 and "pg_dump" in result.stderr
