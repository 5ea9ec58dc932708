"""One installation per directory: found the same way by every command, never locked out in
silence, private files, and a server secret that must be strong whatever the entry point."""

from __future__ import annotations

import asyncio
import logging
import os
import pty
import select
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.accounts.sessions import setup_token, setup_token_valid
from akener.app import AkenerApp, create_app
from akener.db.base import utcnow
from akener.db.engine import begin_write, make_engine
from akener.errors import InvalidInput
from akener.installation.service import fingerprint
from akener.keys.service import create_key
from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.servers import AKENER, AkenerServer, akener_cli, akener_env, free_port

STRONG = "k3Jd8-wQpL2zR7vN0aYc5TgH1mXe6sBf-other-strong-secret"


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_lost_env_is_refused_by_serve_and_every_command(tmp_path: Path) -> None:
    env = akener_env(None, None)
    with AkenerServer(env, tmp_path):
        created = akener_cli(env, tmp_path, "keys", "create", "--name", "Deploy")
        assert created.returncode == 0, created.stderr
        # every file akener created is readable by its owner only (WAL and SHM while it runs)
        for name in (".env", "akener.db", "akener.db-wal", "akener.db-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    original = (tmp_path / ".env").read_text()

    (tmp_path / ".env").unlink()  # the operator loses the .env
    port = str(free_port())
    for args in (("serve", "--port", port), ("keys", "list"), ("users", "setup-link")):
        line = _one_error_line(akener_cli(env, tmp_path, *args))
        assert "AKENER_SECRET_KEY" in line and ".env" in line, line
    serve_line = _one_error_line(akener_cli(env, tmp_path, "serve", "--port", port))
    assert "will not generate" in serve_line and "Restore" in serve_line
    assert not (tmp_path / ".env").exists()  # no new secret over existing keys

    # another (strong) secret is not the one the keys were made with
    wrong = akener_env(None, STRONG)
    for args in (("serve", "--port", port), ("keys", "list")):
        line = _one_error_line(akener_cli(wrong, tmp_path, *args))
        assert "not the one 1 key(s) were made with" in line and "Restore" in line

    (tmp_path / ".env").write_text(original)  # restored from the backup: all is well again
    listed = akener_cli(env, tmp_path, "keys", "list")
    assert listed.returncode == 0 and "Deploy" in listed.stdout


def test_commands_find_the_installation_or_say_where_they_looked(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / ".env").write_text(f"AKENER_SECRET_KEY={TEST_SECRET}\n")
    env = akener_env(None, None)
    assert akener_cli(env, home, "db", "upgrade").returncode == 0
    assert (home / "akener.db").stat().st_mode & 0o777 == 0o600

    for args in (("keys", "list"), ("keys", "create", "--name", "x"), ("audit", "export")):
        line = _one_error_line(akener_cli(env, elsewhere, *args))
        assert f"looked for {elsewhere}/.env and {elsewhere}/akener.db" in line
        assert "--dir" in line and "AKENER_HOME" in line
    assert list(elsewhere.iterdir()) == []  # nothing created where nothing was found

    made = akener_cli(env, elsewhere, "--dir", str(home), "keys", "create", "--name", "Far")
    assert made.returncode == 0, made.stderr
    listed = akener_cli({**env, "AKENER_HOME": str(home)}, elsewhere, "keys", "list")
    assert listed.returncode == 0 and "Far" in listed.stdout
    assert list(elsewhere.iterdir()) == []

    # serve from elsewhere with --dir uses the same database and secret (workers included)
    with AkenerServer({**env, "AKENER_HOME": str(home)}, elsewhere) as server:
        key = made.stdout.strip()
        me = httpx.get(f"{server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["name"] == "Far"
    assert not (elsewhere / "akener.db").exists() and not (elsewhere / ".env").exists()

    missing = akener_cli(env, elsewhere, "--dir", str(tmp_path / "nope"), "keys", "list")
    assert "not a directory" in _one_error_line(missing)


@pytest.mark.parametrize(
    "secret", ["changeme", "secret", "changeme" * 5, "short-but-not-a-placeholder", ""]
)
def test_serve_refuses_a_weak_secret_on_any_database(
    tmp_path: Path, database_url: str, secret: str
) -> None:
    env = akener_env(database_url, secret)
    line = _one_error_line(akener_cli(env, tmp_path, "serve", "--port", str(free_port())))
    assert "AKENER_SECRET_KEY" in line
    if secret:
        assert "AKENER_OLD_SECRET_KEYS=1:<weak secret>" in line
    assert not (tmp_path / ".env").exists()


async def test_the_asgi_factory_and_workers_refuse_a_weak_secret(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKENER_HOME", str(tmp_path))
    monkeypatch.setenv("AKENER_DATABASE_URL", database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", "changeme")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app = create_app()  # what uvicorn/granian workers call
    finally:
        root.handlers[:], root.level = handlers, level
    with pytest.raises(InvalidInput, match="well-known placeholder"):
        async with app.running():
            pass
    weak = Settings(database_url=database_url, secret_key="short-secret-1", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(InvalidInput, match="shorter than 32"):
        await Runtime.start(weak)
    # a weak secret may stay as an old version while a strong one is current
    upgraded = Settings(
        database_url=database_url,
        secret_key=STRONG,
        secret_key_version=2,
        old_secret_keys="1:changeme",
        _env_file=None,  # type: ignore[call-arg]
    )
    runtime = await Runtime.start(upgraded)
    await runtime.close()


async def test_secret_rotation_keeps_working_and_a_wrong_secret_is_refused(
    settings: Settings,
) -> None:
    runtime = await Runtime.start(settings)
    async with runtime.sessionmaker() as session:
        await begin_write(session)
        _, key = await create_key(
            session, CLI_PRINCIPAL, name="Old", scopes=[], peppers=runtime.peppers
        )
        await session.commit()
    await runtime.close()

    # a secret that is not the one version 1 keys were made with, or no secret for them at all
    replaced = settings.model_copy(update={"secret_key": SecretStr(STRONG)})
    with pytest.raises(InvalidInput, match="secret for version 1 is not the one"):
        await Runtime.start(replaced)
    moved_on = settings.model_copy(
        update={"secret_key": SecretStr(STRONG), "secret_key_version": 2}
    )
    with pytest.raises(InvalidInput, match="no configured server secret matches"):
        await Runtime.start(moved_on)

    # the documented rotation: a new current version, the old secret kept
    rotated = moved_on.model_copy(update={"old_secret_keys": f"1:{TEST_SECRET}"})
    app = AkenerApp(rotated)
    async with (
        app.running(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://akener.test"
        ) as client,
    ):
        me = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["name"] == "Old"


def test_first_run_setup_link_only_on_a_terminal(tmp_path: Path) -> None:
    env = akener_env(None, None)
    with AkenerServer(env, tmp_path) as server:  # output to a log file: no link in it
        log = server.log_text()
    assert "/setup?token=" not in log and "akener users setup-link" in log

    printed = akener_cli(env, tmp_path, "users", "setup-link", "--port", "8123")
    assert printed.returncode == 0, printed.stderr
    link = printed.stdout.strip()
    assert link.startswith("http://127.0.0.1:8123/setup?token=")
    secret = (tmp_path / ".env").read_text().split("AKENER_SECRET_KEY=")[1].strip()
    assert setup_token_valid(secret.encode(), link.split("token=")[1])

    # on a terminal, serve prints the link itself
    port = free_port()
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*AKENER, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"/setup?token=" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
    finally:
        process.terminate()
        process.wait(timeout=15)
        os.close(leader)
    assert f"http://127.0.0.1:{port}/setup?token=".encode() in seen, seen


def test_a_setup_link_expires_after_24_hours() -> None:
    secret = TEST_SECRET.encode()
    now = utcnow()
    fresh = setup_token(secret, now)
    assert setup_token_valid(secret, fresh, now + timedelta(hours=23, minutes=59))
    assert not setup_token_valid(secret, fresh, now + timedelta(hours=24, seconds=1))
    assert not setup_token_valid(b"another secret", fresh, now)
    far = setup_token(secret, now + timedelta(days=30))  # made to last longer: refused
    assert not setup_token_valid(secret, far, now)
    for bad in ("", "guess", "123.abc", "\uff19" * 10 + "." + "a" * 32):
        assert not setup_token_valid(secret, bad, now)


async def test_an_expired_setup_link_is_refused_by_the_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    old = setup_token(TEST_SECRET.encode(), utcnow() - timedelta(hours=25))
    answer = await client.get(f"/setup?token={old}")
    assert answer.status_code == 404 and "setup-link" in answer.text
    fresh = setup_token(TEST_SECRET.encode())
    assert (await client.get(f"/setup?token={fresh}")).status_code == 200


async def test_workers_starting_together_record_each_fingerprint_once(settings: Settings) -> None:
    runtimes = await asyncio.gather(*(Runtime.start(settings) for _ in range(4)))
    for runtime in runtimes:
        await runtime.close()
    engine = make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.exec_driver_sql("SELECT version, fingerprint FROM server_secrets")
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(1, fingerprint(TEST_SECRET.encode(), 1))]
    assert TEST_SECRET not in str(rows)
