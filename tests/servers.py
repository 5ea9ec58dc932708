"""Real ``akener serve`` processes and CLI runs for tests, on free ports, polled with a bound."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

AKENER = [sys.executable, "-m", "akener"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process descended from it (server workers), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found = {pid}
    while True:
        more = {child for child, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def akener_env(database_url: str | None, secret: str | None, **extra: str) -> dict[str, str]:
    """The environment of an akener command: no URL means the SQLite default in the working
    directory, no secret means none is set (as on a newcomer's first run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
    env["AKENER_LOG_LEVEL"] = "warning"
    # Tests reach nothing off this machine (GitHub's key list included).
    env["AKENER_GITHUB_SCANNING_KEYS_URL"] = "http://127.0.0.1:9/nothing-listens-here"
    if database_url is not None:
        env["AKENER_DATABASE_URL"] = database_url
    if secret is not None:
        env["AKENER_SECRET_KEY"] = secret
    env.update(extra)
    return env


def akener_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``akener`` CLI command to completion."""
    return subprocess.run(
        [*AKENER, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class AkenerServer:
    """``akener serve`` in a subprocess; ``url`` is where it answers."""

    def __init__(
        self, env: dict[str, str], workdir: Path, *, workers: int = 1, server: str | None = None
    ) -> None:
        self.env = env
        self.workdir = workdir
        self.workers = workers
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"serve-{self.port}.log"

    def __enter__(self) -> AkenerServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [*AKENER, "serve", "--port", str(self.port)]
        command += ["--server", self.server] if self.server else []
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--workers", str(self.workers)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # Generous: on a machine shared with other busy jobs two workers took over 30 s to start.
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"akener serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/authz", timeout=1).status_code == 401:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"akener serve did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server (it flushes usage and closes its connections on the way out)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
