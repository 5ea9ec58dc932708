"""A real akener server in a subprocess for browser tests, and helpers to seed its database."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx

from akener.accounts import passwords
from akener.accounts.models import User
from akener.accounts.repository import RoleRepository
from akener.accounts.sessions import setup_token
from akener.db.engine import make_engine, make_sessionmaker
from akener.db.migrate import upgrade
from akener.keys import service as keys_service
from akener.keys.peppers import Peppers
from akener.keys.schemas import KeyRead

T = TypeVar("T")
SECRET = "browser-test-secret-" + "b" * 40
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a thread of its own (Playwright owns this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result(timeout=60)  # type: ignore[arg-type]


@cache
def password_hash() -> str:
    """One Argon2id hash of PASSWORD, computed once per run (hashing is slow on purpose)."""
    return run_async(lambda: passwords.hash_password(PASSWORD))


@dataclass
class LiveServer:
    """An ``akener`` process serving a database of its own on a free loopback port."""

    root: Path
    database_url: str
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)  # more AKENER_ settings for the process
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def setup_url(self) -> str:
        """The first-run link ``akener serve`` prints."""
        return f"{self.url}/setup?token={setup_token(SECRET.encode())}"

    def start(self) -> LiveServer:
        """Migrate the database, start uvicorn on a socket bound here, wait until it answers."""
        run_async(lambda: _migrate(self.database_url))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # the kernel picks a free port: no clash with other runs
        self.port = sock.getsockname()[1]
        env = {
            **os.environ,
            "AKENER_DATABASE_URL": self.database_url,
            "AKENER_SECRET_KEY": SECRET,
            "AKENER_LOG_LEVEL": "warning",
            **self.env,
        }
        command = [
            sys.executable, "-m", "uvicorn", "akener.app:create_app", "--factory",
            "--fd", str(sock.fileno()), "--no-access-log",
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=out, stderr=out, pass_fds=[sock.fileno()]
            )
        sock.close()
        try:
            self._wait_ready()
        except RuntimeError:
            self.stop()  # a server that did not come up is not left running
            raise
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"akener exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/login", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a starting server, bounded by the deadline
        raise RuntimeError(f"akener did not start in {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server process."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def db(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(session)`` in one committed transaction on the server's database."""

        async def _run() -> T:
            engine = make_engine(self.database_url)
            try:
                async with make_sessionmaker(engine)() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            finally:
                await engine.dispose()

        return run_async(_run)

    def add_user(self, email: str, *roles: str, owner: bool = False) -> str:
        """A user with PASSWORD and the named roles; returns its id."""
        hashed = password_hash()

        async def work(session: Any) -> str:
            found = await RoleRepository(session).get_by_names(list(roles))
            user = User(
                email=email,
                display_name=email.split("@")[0].title(),
                password_hash=hashed,
                owner_flag=True if owner else None,
                roles=found,
            )
            session.add(user)
            await session.flush()
            return user.id

        return self.db(work)

    def add_key(self, name: str, *, scopes: list[str] | None = None) -> tuple[KeyRead, str]:
        """A key created as the CLI would; returns it and its plaintext."""
        from akener.accounts.permissions import CLI_PRINCIPAL

        peppers = Peppers.from_secrets({1: SECRET.encode()}, 1)

        async def work(session: Any) -> tuple[KeyRead, str]:
            row, plaintext = await keys_service.create_key(
                session, CLI_PRINCIPAL, name=name, scopes=scopes or [], peppers=peppers
            )
            return KeyRead.model_validate(row), plaintext

        return self.db(work)


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
