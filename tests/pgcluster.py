"""A PostgreSQL cluster of a test's own, on its own port, that the test may freeze or stop.

Fault tests never touch the shared server: they start one here (``initdb`` refuses to run as
root, so the cluster belongs to the ``postgres`` user), freeze it by stopping every one of its
processes (SIGSTOP: sockets stay open, nothing answers, as with a hung host or a partition) and
thaw it again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.servers import free_port, process_tree

PG_BIN = Path(os.environ.get("AKENER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """Why no private cluster can be started here, or None when one can."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN} (set AKENER_TEST_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


class PgCluster:
    """``initdb`` + ``pg_ctl start`` in a fresh directory; ``url`` reaches it (trust auth)."""

    def __init__(self, *, max_connections: int = 60) -> None:
        self.port = free_port()
        self.max_connections = max_connections
        # Not under pytest's tmp_path: the postgres user must be able to reach the directory.
        self.root = Path(tempfile.mkdtemp(prefix="akener-pg-"))
        self.data = self.root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._frozen: set[int] = set()

    def _as_owner(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> PgCluster:
        """Create the cluster (first time) and start it; returns when it accepts connections."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not self.data.exists():
            self._as_owner(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                "--no-sync", "--no-instructions",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            f" -c max_connections={self.max_connections} -c shared_buffers=16MB"
        )
        self._as_owner(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.root / "log"), "start",
        )  # fmt: skip
        return self

    def pids(self) -> set[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return process_tree(postmaster)

    def freeze(self) -> None:
        """Stop every process of the cluster: connections stay open, nothing answers."""
        self._frozen = self.pids()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let the frozen processes run again."""
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = set()

    def stop(self) -> None:
        """Stop the cluster at once (it may be started again)."""
        self.thaw()
        if (self.data / "postmaster.pid").exists():
            self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        time.sleep(0.1)

    def remove(self) -> None:
        """Stop and delete the cluster."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()
