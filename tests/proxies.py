"""What the real-proxy tests share: the configurations read from docs/forward-auth.md, an echo
upstream that records what reaches it, and one akener with a fixed set of keys."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key
from tests.servers import AkenerServer, akener_cli, akener_env

DOC = Path(__file__).resolve().parents[1] / "docs" / "forward-auth.md"

# The scopes any documented route requires; the "ops" and "victim" keys hold them all.
ALL_SCOPES = ["admin", "incidents.read", "incidents.write", "orders.read"]

# Every identity header a client might forge, with a value akener never sends.
FORGED = {
    "X-Akener-Key-Id": "f" * 32,
    "X-Akener-Key-Name": "forged",
    "X-Akener-Scopes": "admin orders.read everything",
    "X-Akener-Owner-Id": "forged",
    "X-Akener-Credits-Remaining": "1000000",
    "X-Akener-Required-Scope": "forged",
    "X-Akener-Error": "forged",
}


# The headers akener sets for the API on 200 (docs/forward-auth.md, docs/limits.md).
IDENTITY = (
    "x-akener-key-id",
    "x-akener-key-name",
    "x-akener-scopes",
    "x-akener-owner-id",
    "x-akener-credits-remaining",
)


def doc_block(language: str, containing: str = "") -> str:
    """The one fenced code block of ``language`` in docs/forward-auth.md that contains
    ``containing``."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.M | re.S)
    found = [str(block) for block in blocks if containing in block]
    assert len(found) == 1, f"{len(found)} {language} blocks contain {containing!r}"
    return found[0]


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
    admin: str  # ALL_SCOPES
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
            admin_row, admin = await make_key(runtime, "ops", scopes=ALL_SCOPES)
            bare_row, bare = await make_key(runtime, "bare", scopes=[])
            victim_row, victim = await make_key(runtime, "victim", scopes=ALL_SCOPES)
        finally:
            await runtime.close()
        return Keys(
            reader, reader_row.id, admin, admin_row.id, bare, bare_row.id, victim, victim_row.id
        )

    keys = asyncio.run(make())
    env = akener_env(url, TEST_SECRET)
    with AkenerServer(env, workdir / "serve") as server:
        yield Akener(server, keys, env, workdir)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """The API behind the proxy, one per test module."""
    server, stop = start_upstream()
    yield server
    stop()


@pytest.fixture(scope="module")
def akener(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Akener]:
    """The akener the proxy asks, one per test module."""
    yield from start_akener(sqlite_template, tmp_path_factory.mktemp("akener"))


class CountingRelay:
    """A TCP relay in front of akener that counts the connections a proxy opens through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> CountingRelay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


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


# The tests every proxy module runs: it imports them (pytest collects them there) and provides
# the module-scoped fixtures ``akener``, ``upstream``, ``proxy_url`` (the documented
# configuration, running), ``routes`` (a path on each documented route with the scope it
# requires), ``proxy_without_akener`` (a function starting the same configuration with akener
# unreachable; a context manager giving its URL) and ``proxy_to`` (the same, given akener's port).


@dataclass(frozen=True)
class Route:
    """A request that one documented route of a proxy configuration handles."""

    method: str
    path: str
    scope: str | None  # the scope the route requires, if any


def assert_refusal(answer: httpx.Response, status: int, code: str) -> None:
    """The proxy refused with ``status`` and akener's JSON (not the proxy's own page)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    assert answer.json()["error"]["code"] == code


def _send(http: httpx.Client, route: Route, suffix: str, headers: dict[str, str]) -> httpx.Response:
    return http.request(route.method, route.path + suffix, headers=headers)


def test_missing_and_invalid_keys_are_refused_with_akeners_json(
    proxy_url: str, upstream: Upstream, routes: list[Route]
) -> None:
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for route in routes:
            missing = _send(http, route, "/missing", FORGED)
            assert_refusal(missing, 401, "UNAUTHORIZED")
            assert missing.headers["www-authenticate"] == "Bearer"
            for credential in ("akener_" + "0" * 64, "akener_nope"):
                invalid = _send(http, route, "/invalid", FORGED | bearer(credential))
                assert_refusal(invalid, 401, "UNAUTHORIZED")
            assert not upstream.reached(route.path + "/missing")
            assert not upstream.reached(route.path + "/invalid")


def test_a_valid_key_reaches_the_api_with_akeners_identity_never_the_clients(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for route in routes:
            answer = _send(http, route, "/valid", FORGED | bearer(akener.keys.admin))
            assert answer.status_code == 200, answer.text
            seen = upstream.headers_for(route.path + "/valid")
            identity = {name: value for name, value in seen.items() if "akener" in name}
            # The key has no owner and no credits: those two arrive empty, or not at all
            # (nginx drops a header set to an empty value); never with the client's values.
            assert set(identity) <= set(IDENTITY), route
            assert {name: value for name, value in identity.items() if value != [""]} == {
                "x-akener-key-id": [akener.keys.admin_id],
                "x-akener-key-name": ["ops"],
                "x-akener-scopes": [" ".join(ALL_SCOPES)],
            }, route


def test_the_owner_and_the_credits_left_reach_the_api(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    route = next(route for route in routes if route.scope is None)
    made = akener_cli(
        akener.env, akener.workdir, "keys", "create", "--name", f"paid {proxy_url}",
        "--owner-id", "customer_42", "--credits", "10",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for n in range(2):
            answer = _send(http, route, f"/paid{n}", FORGED | bearer(made.stdout.strip()))
            assert answer.status_code == 200, answer.text
    for n, left in enumerate(("9", "8")):
        seen = upstream.headers_for(f"{route.path}/paid{n}")
        assert seen["x-akener-owner-id"] == ["customer_42"]
        assert seen["x-akener-credits-remaining"] == [left]


def test_a_key_without_scopes_cannot_claim_any(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for route in routes:
            answer = _send(http, route, "/bare", FORGED | bearer(akener.keys.bare))
            if route.scope is not None:
                assert_refusal(answer, 403, "FORBIDDEN")
                assert not upstream.reached(route.path + "/bare")
                continue
            assert answer.status_code == 200, answer.text
            seen = upstream.headers_for(route.path + "/bare")
            assert seen["x-akener-key-id"] == [akener.keys.bare_id]
            assert seen["x-akener-key-name"] == ["bare"]
            assert seen.get("x-akener-scopes", [""]) == [""]  # empty, or removed (nginx)
            assert not {"x-akener-required-scope", "x-akener-error"} & set(seen)


def test_the_required_scope_is_enforced(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    scoped = [route for route in routes if route.scope is not None]
    assert scoped, "every documented configuration has a route that needs a scope"
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for route in scoped:
            refused = _send(http, route, "/scoped", FORGED | bearer(akener.keys.reader))
            assert_refusal(refused, 403, "FORBIDDEN")
            assert not upstream.reached(route.path + "/scoped")


def test_the_clients_query_never_reaches_authz(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    # akener refuses these (500 AUTHZ_MISCONFIGURED) if a proxy passes them to /authz.
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for route in routes:
            suffix = "/query?scopes=x&scope=&Scope=admin"
            answer = _send(http, route, suffix, bearer(akener.keys.admin))
            assert answer.status_code == 200, answer.text


def test_a_non_ascii_name_arrives_percent_encoded(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    route = next(route for route in routes if route.scope in (None, "orders.read"))
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        answer = _send(http, route, "/name", bearer(akener.keys.reader))
        assert answer.status_code == 200, answer.text
    assert upstream.headers_for(route.path + "/name")["x-akener-key-name"] == ["D%C3%A9j%C3%A0 vu"]


def test_a_deactivated_key_is_refused_on_every_route(
    proxy_url: str, akener: Akener, routes: list[Route]
) -> None:
    key = akener.keys.victim
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        for route in routes:
            assert _send(http, route, "/victim", bearer(key)).status_code == 200
        done = akener_cli(akener.env, akener.workdir, "keys", "deactivate", akener.keys.victim_id)
        assert done.returncode == 0, done.stderr
        for route in routes:
            assert_refusal(_send(http, route, "/victim", bearer(key)), 401, "UNAUTHORIZED")


def test_a_rate_limited_key_gets_a_429_with_retry_after(
    proxy_url: str, upstream: Upstream, akener: Akener, routes: list[Route]
) -> None:
    route = next(route for route in routes if route.scope is None)
    made = akener_cli(
        akener.env, akener.workdir, "keys", "create", "--name", f"limited {proxy_url}",
        "--rate-limit", "day=1/1d",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    with httpx.Client(base_url=proxy_url, timeout=5) as http:
        first = _send(http, route, "/limited", bearer(key))
        assert first.status_code == 200, first.text
        refused = _send(http, route, "/limited-again", bearer(key))
    assert_refusal(refused, 429, "RATE_LIMITED")
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert refused.headers["ratelimit-policy"] == '"day";q=1;w=86400'
    assert refused.headers["ratelimit"].startswith('"day";r=0;t=')
    assert not upstream.reached(route.path + "/limited-again")


def test_connections_to_akener_are_kept_alive(
    proxy_to: Callable[[int], AbstractContextManager[str]], akener: Akener, routes: list[Route]
) -> None:
    with (
        CountingRelay(akener.server.port) as relay,
        proxy_to(relay.port) as url,
        httpx.Client(base_url=url, timeout=5) as http,
    ):
        for route in routes:
            for n in range(15):
                answer = _send(http, route, f"/alive{n}", bearer(akener.keys.admin))
                assert answer.status_code == 200, answer.text
    # One connection would do for requests one after the other; the proxy may open a second
    # (its start-up probe, a race), never one per check.
    assert 1 <= relay.accepted <= 2, relay.accepted


def test_akener_unreachable_means_refused(
    proxy_without_akener: Callable[[], AbstractContextManager[str]],
    upstream: Upstream,
    akener: Akener,
    routes: list[Route],
) -> None:
    with proxy_without_akener() as url, httpx.Client(base_url=url, timeout=5) as http:
        for route in routes:
            answer = _send(http, route, "/down", FORGED | bearer(akener.keys.admin))
            assert answer.status_code >= 500, answer.text
            assert not upstream.reached(route.path + "/down")
