"""Run a real ``akener serve`` in a subprocess for tests that need a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

AKENER = [sys.executable, "-m", "akener"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_env(database_url: str | None, secret: str | None, **extra: str) -> dict[str, str]:
    """A clean environment for akener subprocesses (no URL: the SQLite default in the cwd)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
    if database_url is not None:
        env["AKENER_DATABASE_URL"] = database_url
    if secret is not None:
        env["AKENER_SECRET_KEY"] = secret
    env.update(extra)
    return env


@dataclass
class Server:
    """A running server: its base URL, its process and where its log goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def serve(cwd: Path, env: dict[str, str], *args: str, timeout: float = 30) -> Iterator[Server]:
    """Start ``akener serve`` and stop it (SIGTERM, then wait) when the block ends."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*AKENER, "serve", "--port", str(port), *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"akener serve exited early:\n{server.log_text()}")
            try:
                if httpx.get(f"{server.url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"akener serve did not come up:\n{server.log_text()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
