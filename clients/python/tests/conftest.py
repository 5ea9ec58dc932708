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
    # Operator scopes the tests hand out (a key can only grant what it holds).
    "reports.read",
    "reports.write",
    "incidents.read",  # the README's example
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
        """A new key with ``scopes``, made through the CLI; its plaintext. (Through the API,
        ``AkenerClient(url, admin_key).create_key`` is faster: no process to start.)"""
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


class ServerProcess:
    """One ``akener serve`` process: started at once, ``wait()`` until it answers, ``stop()``,
    and ``start()`` again on the same port (a test that stops akener uses its own)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        self.start()

    def start(self) -> None:
        """Start the process (again); ``wait()`` for it to answer."""
        with self.log.open("ab") as log:
            # serve creates the schema itself: no separate `db upgrade` process.
            self.process = subprocess.Popen(
                [server_bin(), "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def make_key(self, *scopes: str) -> subprocess.Popen[str]:
        """Start ``akener keys create`` for a key with ``scopes`` (its plaintext on stdout)."""
        args = [server_bin(), "keys", "create", "--name", "client tests admin"]
        for scope in scopes:
            args += ["--scope", scope]
        return subprocess.Popen(
            args,
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> None:
        """Return once the server answers; fail with its log if it does not."""
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"akener serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/authz", timeout=1).status_code == 401:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"akener serve did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and wait for it to end."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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


def _databases(tmp: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, Path]]]:
    found = {}
    workdir = tmp.mktemp("sqlite")
    found["sqlite"] = (f"sqlite:///{workdir / 'akener.db'}", workdir)
    base = os.environ.get("AKENER_TEST_DATABASE_URL")
    if not base:
        yield found
        return
    if shutil.which("createdb") is None:
        pytest.fail("PostgreSQL tests need the createdb and dropdb commands")
    name = f"akener_client_test_{os.getpid()}"
    _pg_tool("dropdb", base, "--if-exists", "--force", name)
    _pg_tool("createdb", base, name)
    found["postgres"] = (urlsplit(base)._replace(path=f"/{name}").geturl(), tmp.mktemp("pg"))
    try:
        yield found
    finally:
        _pg_tool("dropdb", base, "--if-exists", "--force", name)


@pytest.fixture(scope="session")
def _servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Every database's server, started side by side (each start takes seconds)."""
    for databases in _databases(tmp_path_factory):
        running = {
            name: ServerProcess(_env(url), workdir) for name, (url, workdir) in databases.items()
        }
        try:
            for one in running.values():
                one.wait()
            # The admin keys: one CLI run per server, side by side.
            making = {name: one.make_key(*ADMIN_SCOPES) for name, one in running.items()}
            servers = {}
            for name, one in running.items():
                out, err = making[name].communicate(timeout=60)
                assert making[name].returncode == 0, err
                servers[name] = Server(one.url, out.strip(), one.log, one.env, one.workdir)
            yield servers
        finally:
            for one in running.values():
                one.process.terminate()  # all at once, then wait for each
            for one in running.values():
                one.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, _servers: dict[str, Server]) -> Server:
    """A running akener server on each database (PostgreSQL with AKENER_TEST_DATABASE_URL)."""
    if request.param not in _servers:
        pytest.skip("AKENER_TEST_DATABASE_URL is not set: PostgreSQL is not tested")
    return _servers[request.param]


@pytest.fixture
def own_server(server: Server) -> Iterator[ServerProcess]:
    """Another akener process on ``server``'s database, answering at its own ``url``: this
    test's to stop and start again (the shared one must keep running)."""
    process = ServerProcess(server.env, server.workdir)
    try:
        process.wait()
        yield process
    finally:
        process.stop()
