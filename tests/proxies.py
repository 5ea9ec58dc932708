"""What the real-proxy tests share: the configurations read from docs/forward-auth.md, an echo
upstream that records what reaches it, and one akener with a fixed set of keys."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import make_key
from tests.servers import AkenerServer, akener_env

DOC = Path(__file__).resolve().parents[1] / "docs" / "forward-auth.md"

# Every identity header a client might forge, with a value akener never sends.
FORGED = {
    "X-Akener-Key-Id": "f" * 32,
    "X-Akener-Key-Name": "forged",
    "X-Akener-Scopes": "admin orders.read everything",
    "X-Akener-Required-Scope": "forged",
    "X-Akener-Error": "forged",
}


def doc_block(language: str, index: int = 0) -> str:
    """The ``index``-th fenced code block of ``language`` in docs/forward-auth.md."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.M | re.S)
    return str(blocks[index])


def replace_once(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced, failing when the docs no longer contain it."""
    assert old in text, f"docs/forward-auth.md no longer contains {old!r}"
    return text.replace(old, new)


@dataclass
class Upstream:
    """An HTTP server standing for the protected API: answers 200 with the request's headers
    as JSON and records every request it receives."""

    port: int = 0
    seen: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def headers_for(self, path: str) -> dict[str, list[str]]:
        """The headers of the last request that reached ``path``; fails if none did."""
        found = [headers for seen_path, headers in self.seen if seen_path == path]
        assert found, f"{path} never reached the upstream: {[p for p, _ in self.seen]}"
        return found[-1]

    def reached(self, path: str) -> bool:
        """Whether any request for ``path`` reached the upstream."""
        return any(seen_path == path for seen_path, _ in self.seen)


def start_upstream() -> tuple[Upstream, Callable[[], None]]:
    """Start an :class:`Upstream` on a free port; returns it and its stop function."""
    upstream = Upstream()

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            headers: dict[str, list[str]] = {}
            for name, value in self.headers.items():
                headers.setdefault(name.lower(), []).append(value)
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            upstream.seen.append((self.path, headers))
            body = json.dumps(headers).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return upstream, stop


@dataclass
class Keys:
    """The keys every proxy test uses, with their ids."""

    reader: str  # orders.read
    reader_id: str
    admin: str  # admin, orders.read
    admin_id: str
    bare: str  # no scopes
    bare_id: str
    victim: str  # deactivated during a test
    victim_id: str


@dataclass
class Akener:
    """A running ``akener serve`` with :class:`Keys`, and the environment to run its CLI."""

    server: AkenerServer
    keys: Keys
    env: dict[str, str]
    workdir: Path


def start_akener(template: Path, workdir: Path) -> Iterator[Akener]:
    """A real akener on a copy of the migrated SQLite ``template`` (for a module fixture)."""
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "akener.db"
    shutil.copy(template, database)
    url = f"sqlite+aiosqlite:///{database}"

    async def make() -> Keys:
        settings = Settings(database_url=url, secret_key=TEST_SECRET, _env_file=None)  # type: ignore[call-arg]
        runtime = await Runtime.start(settings)
        try:
            reader_row, reader = await make_key(runtime, "Déjà vu", scopes=["orders.read"])
            admin_row, admin = await make_key(runtime, "ops", scopes=["admin", "orders.read"])
            bare_row, bare = await make_key(runtime, "bare", scopes=[])
            victim_row, victim = await make_key(runtime, "victim", scopes=["admin", "orders.read"])
        finally:
            await runtime.close()
        return Keys(
            reader, reader_row.id, admin, admin_row.id, bare, bare_row.id, victim, victim_row.id
        )

    keys = asyncio.run(make())
    env = akener_env(url, TEST_SECRET)
    with AkenerServer(env, workdir / "serve") as server:
        yield Akener(server, keys, env, workdir)


def wait_until_up(
    process: subprocess.Popen[bytes], url: str, log: Path, *, ready: Callable[[int], bool]
) -> None:
    """Poll ``url`` until ``ready(status)`` holds; fail with the proxy's log when it exits."""
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"proxy exited:\n{log.read_text(errors='replace')}")
        try:
            if ready(httpx.get(url, timeout=1).status_code):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"proxy did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a proxy and wait for it."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
