"""A PgBouncer of a test's own (Debian's ``pgbouncer``), on its own port, in front of a server.

PgBouncer refuses to run as root, so it runs as the ``postgres`` user (like tests/pgcluster.py);
its directory is made readable to that user. Every database name is passed through to the
server (``* =``), authentication is ``trust`` (the server behind it trusts local connections).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.servers import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> str | None:
    """Why no PgBouncer can be started here, or None when one can."""
    if not Path(PGBOUNCER).exists():
        return "no pgbouncer binary (Debian package pgbouncer)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


def version() -> tuple[int, int]:
    """PgBouncer's version, e.g. (1, 18)."""
    out = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True, check=True)
    major, minor = out.stdout.split()[1].split(".")[:2]
    return int(major), int(minor)


class PgBouncer:
    """``pgbouncer`` in the foreground; ``url(database)`` reaches a database through it."""

    def __init__(
        self,
        server_port: int,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 2,
        server_host: str = "127.0.0.1",
    ) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="akener-pgbouncer-"))
        self.server = (server_host, server_port)
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        """A URL to ``database`` through this PgBouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def log_text(self) -> str:
        """What PgBouncer logged so far."""
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> PgBouncer:
        """Write the configuration, start PgBouncer, return once it accepts connections."""
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        host, port = self.server
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'userlist.txt'}\n"
            f"pool_mode = {self.pool_mode}\ndefault_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
            "log_connections = 0\nlog_disconnections = 0\n"
        )
        prefix: list[str] = []
        if os.geteuid() == 0:
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres", "postgres")
            prefix = ["runuser", "-u", "postgres", "--"]
        self.process = subprocess.Popen(
            [*prefix, PGBOUNCER, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start:\n{self.log_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop PgBouncer and delete its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
