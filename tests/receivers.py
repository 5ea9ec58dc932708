"""A real HTTP webhook receiver on 127.0.0.1 that records what it gets (tests only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from standardwebhooks import Webhook


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers ``status`` (after ``delay`` seconds) to every POST and keeps each request."""

    status: int = 200
    delay: float = 0.0
    location: str | None = None
    got: list[Received] = field(default_factory=list)
    # Called with each request before it is answered (to break something meanwhile).
    on_request: Callable[[Received], None] | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                item = Received(self.path, dict(self.headers.items()), body)
                owner.got.append(item)
                if owner.on_request is not None:
                    owner.on_request(item)
                time.sleep(owner.delay)
                self.send_response(owner.status)
                if owner.location:
                    self.send_header("Location", owner.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def verified(self, secret: str) -> list[dict[str, object]]:
        """Every payload received, each checked with the standardwebhooks package."""
        found = []
        for item in self.got:
            payload = Webhook(secret).verify(item.body, item.headers)
            found.append(payload)
        return found
