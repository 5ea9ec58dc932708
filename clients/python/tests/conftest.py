"""A real akener server for the client's tests: ``akener serve`` from the server's own
environment (``AKENER_SERVER_BIN``, set by scripts/test-client), on SQLite and, when
``AKENER_TEST_DATABASE_URL`` names a PostgreSQL server, on a database of its own there.

One server per database for the whole run: the tests make their own keys with unique names.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

ADMIN_SCOPES = (
    "api_keys.read",
    "api_keys.write",
    "api_keys.delete",
    "api_keys.verify",
    "audit.read",
    "webhooks.read",
    "webhooks.write",
)


@dataclass(frozen=True)
class Server:
    """A running akener: where it answers, a key holding every API permission, its log."""

    url: str
    admin_key: str
    log: Path
    env: dict[str, str]
    workdir: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one ``akener`` command against this server's database."""
        return subprocess.run(
            [server_bin(), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def make_key(self, *scopes: str, name: str | None = None) -> str:
        """A new key with ``scopes``, made through the CLI; its plaintext."""
        name = name or f"client test {uuid.uuid4().hex[:12]}"
        args = ["keys", "create", "--name", name]
        for scope in scopes:
            args += ["--scope", scope]
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def server_bin() -> str:
    """The ``akener`` command of the server's environment (never this one's)."""
    path = os.environ.get("AKENER_SERVER_BIN")
    if not path:
        pytest.fail("AKENER_SERVER_BIN is not set: run these tests with scripts/test-client")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(database_url: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        AKENER_DATABASE_URL=database_url,
        AKENER_SECRET_KEY=secrets.token_hex(32),
        AKENER_LOG_LEVEL="warning",
        # Tests reach nothing off this machine; webhooks go to a receiver on loopback.
        AKENER_GITHUB_SCANNING_KEYS_URL="http://127.0.0.1:9/nothing-listens-here",
        AKENER_WEBHOOKS_ALLOW_PRIVATE="true",
        AKENER_WEBHOOKS_POLL_SECONDS="0.2",
    )
    return env


def _start(database_url: str, workdir: Path) -> Iterator[Server]:
    env = _env(database_url)
    port = _free_port()
    server = Server(f"http://127.0.0.1:{port}", "", workdir / "serve.log", env, workdir)
    done = server.cli("db", "upgrade")
    assert done.returncode == 0, done.stderr
    server = Server(server.url, server.make_key(*ADMIN_SCOPES), server.log, env, workdir)
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [server_bin(), "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"akener serve exited:\n{server.log.read_text()}")
            try:
                if httpx.get(server.url + "/authz", timeout=1).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"akener serve did not start:\n{server.log.read_text()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pg_tool(tool: str, base: str, *args: str) -> None:
    parts = urlsplit(base)
    command = [
        tool,
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
        *args,
    ]
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A running akener server on each database."""
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        yield from _start(f"sqlite:///{workdir / 'akener.db'}", workdir)
        return
    base = os.environ.get("AKENER_TEST_DATABASE_URL")
    if not base:
        pytest.skip("AKENER_TEST_DATABASE_URL is not set: PostgreSQL is not tested")
    if shutil.which("createdb") is None:
        pytest.fail("PostgreSQL tests need the createdb and dropdb commands")
    name = f"akener_client_test_{os.getpid()}"
    _pg_tool("dropdb", base, "--if-exists", "--force", name)
    _pg_tool("createdb", base, name)
    url = urlsplit(base)._replace(path=f"/{name}").geturl()
    try:
        yield from _start(url, workdir)
    finally:
        _pg_tool("dropdb", base, "--if-exists", "--force", name)
