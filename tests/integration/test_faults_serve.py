"""Operator traps at the process level: a second server on a busy port, and a SQLite file
deleted or replaced under a running server. Real ``akener serve`` processes."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.factories import bearer
from tests.servers import AkenerServer, akener_cli, akener_env


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_a_second_server_on_a_busy_port_exits_with_address_in_use(
    tmp_path: Path, server: str
) -> None:
    env = akener_env(None, TEST_SECRET)
    with AkenerServer(env, tmp_path / "first", server=server) as first:
        second = tmp_path / "second"
        second.mkdir()
        started = time.monotonic()
        result = akener_cli(env, second, "serve", "--port", str(first.port), "--server", server)
        assert result.returncode == 1
        assert "address already in use" in result.stderr
        assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
        assert time.monotonic() - started < 20
        assert not (second / "akener.db").exists()  # refused before touching anything
        # The first server alone answers, every time.
        for _ in range(20):
            assert httpx.get(first.url + "/authz").status_code == 401


def test_a_port_held_by_another_program_is_refused(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = akener_cli(akener_env(None, TEST_SECRET), tmp_path, "serve", "--port", str(port))
    assert result.returncode == 1
    assert f"address already in use: 127.0.0.1:{port}" in result.stderr


def _admin(env: dict[str, str], cwd: Path) -> str:
    created = akener_cli(env, cwd, "keys", "create", "--name", "admin", "--scope",
                         "api_keys.read", "--scope", "api_keys.write")  # fmt: skip
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def _refused_within(url: str, key: str, seconds: float) -> float:
    started = time.monotonic()
    while True:
        answer = httpx.get(url + "/authz", headers=bearer(key))
        if answer.status_code == 503:
            return time.monotonic() - started
        assert answer.status_code == 200
        assert time.monotonic() - started < seconds, "the replaced file went unnoticed"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["replaced", "deleted"])
def test_a_replaced_or_deleted_sqlite_file_fails_closed_until_restart(
    tmp_path: Path, how: str
) -> None:
    env = akener_env(None, TEST_SECRET)
    database = tmp_path / "akener.db"
    with AkenerServer(env, tmp_path, workers=2) as server:
        admin = _admin(env, tmp_path)
        for _ in range(4):  # cached by both workers, most likely
            assert httpx.get(server.url + "/authz", headers=bearer(admin)).status_code == 200
        backup = tmp_path / "backup.db"
        akener_cli(env, tmp_path, "keys", "list")  # a checkpoint-free read; the copy is whole
        shutil.copy(database, backup)
        if how == "replaced":
            backup.replace(database)  # e.g. a restore copied over the live file
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
        assert _refused_within(server.url, admin, 3.0) < 3.0
        answers = [
            httpx.post(
                server.url + "/api/v1/keys", json={"name": f"lost {n}"}, headers=bearer(admin)
            )
            for n in range(4)
        ]
        for answer in answers:  # no write is acknowledged into a file nobody will read
            assert answer.status_code == 503, answer.text
            assert "deleted or replaced" in answer.json()["error"]["message"]
        page = httpx.get(server.url + "/setup?token=x")
        assert page.status_code == 503 and "deleted or replaced" in page.text
        time.sleep(1.5)  # still closed later: it never reopens by itself
        assert httpx.get(server.url + "/authz", headers=bearer(admin)).status_code == 503
    log = server.log_text()
    assert "was deleted or replaced" in log and "Traceback" not in log
    if how == "replaced":  # after a restart the file at the path is the one used
        with AkenerServer(env, tmp_path) as again:
            assert httpx.get(again.url + "/authz", headers=bearer(admin)).status_code == 200
