"""A real ``akener serve`` and the CLI, as a newcomer uses them (the README walk-through)."""

from __future__ import annotations

import json
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from akener.cli import main
from tests.conftest import TEST_SECRET
from tests.servers import AkenerServer, akener_cli, akener_env


def raw_request(url: str, request: bytes) -> bytes:
    """Send bytes exactly as given (no client normalises the path) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_first_run_on_sqlite_then_the_readme_walkthrough(tmp_path: Path) -> None:
    env = akener_env(None, None, AKENER_LOG_LEVEL="info")  # request lines are logged at info
    with AkenerServer(env, tmp_path) as server:
        assert (tmp_path / ".env").read_text().startswith("AKENER_SECRET_KEY=")
        assert (tmp_path / "akener.db").exists()
        assert "Generated a new AKENER_SECRET_KEY" in server.log_text()

        created = akener_cli(
            env,
            tmp_path,
            "keys",
            "create",
            "--name",
            "Deploy Pipeline",
            "--scope",
            "api_keys.read",
            "--scope",
            "api_keys.write",
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert created.stdout == key + "\n"  # the plaintext alone on stdout
        assert key.startswith("akener_") and "Save it now" in created.stderr

        headers = {"Authorization": f"Bearer {key}"}
        me = httpx.get(f"{server.url}/api/v1/whoami", headers=headers)
        assert me.status_code == 200 and me.json()["name"] == "Deploy Pipeline"
        listed = json.loads(akener_cli(env, tmp_path, "keys", "list", "--json").stdout)
        assert listed["id"] == me.json()["id"]

        off = akener_cli(env, tmp_path, "keys", "deactivate", listed["id"])
        assert off.returncode == 0 and "INACTIVE" in off.stderr
        assert httpx.get(f"{server.url}/api/v1/whoami", headers=headers).status_code == 401
        assert akener_cli(env, tmp_path, "keys", "activate", listed["id"]).returncode == 0
        assert httpx.get(f"{server.url}/api/v1/whoami", headers=headers).status_code == 200
        # a key pasted into a URL by mistake must not reach the log either
        httpx.get(f"{server.url}/api/v1/keys/{key}", headers=headers)

        refused = akener_cli(env, tmp_path, "keys", "delete", listed["id"])
        assert refused.returncode != 0  # asks, and no answer means no
        assert akener_cli(env, tmp_path, "keys", "delete", listed["id"], "--yes").returncode == 0
        assert httpx.get(f"{server.url}/api/v1/whoami", headers=headers).status_code == 401
        log = server.log_text()

    secret_part = key.removeprefix("akener_")
    assert '"path": "/api/v1/whoami"' in log and '"status": 401' in log
    assert secret_part not in log and "Bearer akener" not in log
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("akener.db*"))
    assert secret_part.encode() not in stored and secret_part[-12:].encode() not in stored


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run the CLI in this process (much faster than a subprocess); returns code, out, err."""
    monkeypatch.setattr(sys, "argv", ["akener", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_cli_reports_errors_on_stderr_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in akener_env(f"sqlite:///{tmp_path}/k.db", TEST_SECRET).items():
        monkeypatch.setenv(name, value)
    assert run_cli(monkeypatch, capsys, "db", "upgrade")[0] == 0
    for args in (
        ["keys", "activate", "missing"],
        ["keys", "create", "--name", "   "],
        ["keys", "create", "--name", "x", "--scope", "bad scope"],
    ):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 1, args
        assert out == ""
        assert err.startswith("error: ")
    assert run_cli(monkeypatch, capsys, "keys", "create", "--name", "dup")[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, "keys", "create", "--name", "dup")
    assert code == 1 and "already exists" in err
    code, out, _ = run_cli(monkeypatch, capsys, "keys", "create", "--name", "j", "--json")
    created = json.loads(out)
    assert created["key"].startswith("akener_") and created["name"] == "j"
    code, out, _ = run_cli(monkeypatch, capsys, "keys", "list")
    assert code == 0 and "dup" in out and created["key"] not in out
    assert created["masked_key"][-32:] in out


def test_cli_expiry_and_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in akener_env(f"sqlite:///{tmp_path}/k.db", TEST_SECRET).items():
        monkeypatch.setenv(name, value)
    assert run_cli(monkeypatch, capsys, "db", "upgrade")[0] == 0
    code, out, _ = run_cli(
        monkeypatch, capsys, "keys", "create", "--name", "q", "--expires-in", "90d", "--json"
    )
    created = json.loads(out)
    expires = datetime.fromisoformat(created["expires_at"])
    assert code == 0 and timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    code, out, err = run_cli(monkeypatch, capsys, "keys", "rotate", created["id"], "--grace", "1h")
    assert code == 0 and out.strip().startswith("akener_") and out.strip() != created["key"]
    assert "old secret works until" in err
    for bad in (
        ["--expires-in", "soon"],
        ["--expires-at", "2000-01-01"],
        ["--expires-in", "1d", "--expires-at", "2099-01-01"],
    ):
        code, out, err = run_cli(monkeypatch, capsys, "keys", "create", "--name", "z", *bad)
        assert code == 1 and out == "" and err.startswith("error: "), bad
    code, _, err = run_cli(monkeypatch, capsys, "keys", "rotate", created["id"], "--grace", "8d")
    assert code == 1 and "7 days" in err


def test_cli_on_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    env = akener_env(f"sqlite:///{tmp_path}/empty.db", TEST_SECRET)
    result = akener_cli(env, tmp_path, "keys", "list")
    assert result.returncode == 1
    assert "akener db upgrade" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("secret", [None, "changeme", "short"])
def test_postgresql_refuses_to_start_without_a_real_secret(
    tmp_path: Path, secret: str | None
) -> None:
    env = akener_env("postgresql://postgres@127.0.0.1:5432/unused", secret)
    result = akener_cli(env, tmp_path, "serve", "--port", "1")
    assert result.returncode == 1
    assert "AKENER_SECRET_KEY" in result.stderr
    assert not (tmp_path / ".env").exists()


def test_real_server_paths_headers_and_sizes(tmp_path: Path, database_url: str) -> None:
    env = akener_env(database_url, TEST_SECRET)
    with AkenerServer(env, tmp_path) as server:
        for path in (
            b"//api/v1/keys",
            b"/%61pi/v1/keys",
            b"/api/v1/%6Beys",
            b"/API/v1/keys",
            b"/api/v1/../v1/keys",
            b"/api/./v1/keys",
            b"/api%2fv1%2fkeys",
        ):
            answer = raw_request(
                server.url, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert answer.startswith(b"HTTP/1.1 401 "), (path, answer[:80])
        key = "akener_" + "a" * 64
        twice = (
            f"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Authorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        ).encode()
        assert raw_request(server.url, twice).startswith(b"HTTP/1.1 401 ")
        big = {"Authorization": "Bearer " + "a" * 8192}
        assert httpx.get(f"{server.url}/api/v1/whoami", headers=big).status_code in {400, 401, 431}
        huge = {"X-Filler": "a" * 200_000}
        try:
            status = httpx.get(f"{server.url}/api/v1/whoami", headers=huge).status_code
        except httpx.RemoteProtocolError:
            status = 400  # the server closed the connection on the oversized head
        assert 400 <= status < 500
        non_ascii = (
            b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer \xe9\xff\r\nConnection: close\r\n\r\n"
        )
        assert raw_request(server.url, non_ascii).startswith(b"HTTP/1.1 401 ")
        assert "Traceback" not in server.log_text()
