"""For the Verifier's tests: akener servers of their own (stopped, restarted, with a short
heartbeat) and a TCP relay that can cut or freeze every connection through it."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from akener_client import AkenerClient
from tests.conftest import ADMIN_SCOPES, _env, _free_port, _pg_tool, server_bin

HEARTBEAT = "1"  # seconds: a dead stream is noticed within 2.5 of them


class OwnServer:
    """An ``akener serve`` this test may stop and start again (same port, same database)."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.env = _env(database_url) | {"AKENER_CHANGES_HEARTBEAT_SECONDS": HEARTBEAT}
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_key = ""

    def start(self) -> None:
        """Start and wait until it answers."""
        with (self.workdir / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                [server_bin(), "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail((self.workdir / "serve.log").read_text())
            try:
                if httpx.get(self.url + "/authz", timeout=1).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "akener serve did not start"
            time.sleep(0.05)
        if not self.admin_key:
            self.admin_key = self.cli_key(*ADMIN_SCOPES)

    def stop(self) -> None:
        """SIGTERM, and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli_key(self, *scopes: str) -> str:
        """A new key made with the CLI."""
        args = ["keys", "create", "--name", f"verifier test {os.urandom(6).hex()}"]
        for scope in scopes:
            args += ["--scope", scope]
        done = subprocess.run(
            [server_bin(), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def admin(self) -> AkenerClient:
        """A client holding every API permission."""
        return AkenerClient(self.url, self.admin_key)


@contextmanager
def own_server(backend: str, tmp: Path) -> Iterator[OwnServer]:
    """A started OwnServer on SQLite or on a PostgreSQL database of its own."""
    base = os.environ.get("AKENER_TEST_DATABASE_URL")
    name = ""
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'akener.db'}"
    else:
        if not base:
            pytest.skip("AKENER_TEST_DATABASE_URL is not set: PostgreSQL is not tested")
        name = f"akener_verifier_{os.getpid()}_{os.urandom(3).hex()}"
        _pg_tool("createdb", base, name)
        url = urlsplit(base)._replace(path=f"/{name}").geturl()
    server = OwnServer(url, tmp)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if name and base:
            _pg_tool("dropdb", base, "--if-exists", "--force", name)


class Relay:
    """A TCP relay to ``target_port``: ``cut()`` drops every connection and refuses new ones,
    ``freeze()`` keeps connections open but passes nothing, ``restore()`` undoes both."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.open = threading.Event()
        self.open.set()
        self.frozen = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection; refuse new ones until ``restore``."""
        self.open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def freeze(self) -> None:
        """Keep connections but pass no byte (a silent partition)."""
        self.frozen.set()

    def restore(self) -> None:
        """Pass traffic again."""
        self.frozen.clear()
        self.open.set()

    def close(self) -> None:
        """Stop the relay."""
        self.cut()
        self.listener.close()


def until(check: object, bound: float, step: float = 0.001) -> float:
    """Seconds until ``check()`` is true; fails past ``bound``."""
    assert callable(check)
    started = time.perf_counter()
    while not check():
        assert time.perf_counter() - started < bound, f"not true within {bound} s"
        time.sleep(step)
    return time.perf_counter() - started
