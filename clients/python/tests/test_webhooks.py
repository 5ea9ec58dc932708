"""Webhooks through the client against a real akener server and a receiver on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from akener_client import AkenerClient, AsyncAkenerClient, NotFoundError, ValidationError
from akener_client.models import Delivery
from tests.conftest import Server


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.received.append((self.headers.get("webhook-id", ""), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A webhook receiver on loopback: its URL and what it received (webhook-id, body)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    received: list[tuple[str, bytes]] = []
    httpd.received = received  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _delivered(admin: AkenerClient, webhook_id: str, count: int) -> list[Delivery]:
    deadline = time.monotonic() + 20
    while True:
        deliveries = admin.list_deliveries(webhook_id)
        done = [d for d in deliveries if d.state == "delivered"]
        if len(done) >= count:
            return deliveries
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.1)


def test_a_webhook_s_whole_life(
    server: Server, receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, received = receiver
    with AkenerClient(server.url, server.admin_key) as admin:
        hook = admin.create_webhook(url, ["key.deactivated"], description="client tests")
        assert hook.secret.startswith("whsec_") and hook.secret not in repr(hook)
        assert hook.events == ("key.deactivated",) and hook.description == "client tests"
        assert hook.id in {w.id for w in admin.list_webhooks()}
        assert admin.get_webhook(hook.id).url == url

        with pytest.raises(ValidationError) as invalid:
            admin.create_webhook(url, ["key.nothing"])
        assert invalid.value.fields

        key = admin.create_key(f"hooked {uuid.uuid4().hex[:10]}")
        admin.deactivate_key(key.id)
        first = _delivered(admin, hook.id, 1)
        assert first[0].attempts == 1 and first[0].last_status == 204
        assert key.id.encode() in received[0][1]

        again = admin.resend_delivery(hook.id, first[0].id)
        assert again.id == first[0].id and again.state == "pending"
        _delivered(admin, hook.id, 1)
        deadline = time.monotonic() + 20
        while len(received) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert received[1][0] == received[0][0]  # the same webhook-id: a receiver can dedupe

        changed = admin.update_webhook(hook.id, events=["key.deleted"], description="changed")
        assert (changed.events, changed.description) == (("key.deleted",), "changed")
        rotated = admin.rotate_webhook_secret(hook.id, overlap_seconds=60)
        assert rotated.secret != hook.secret and rotated.previous_secret_until is not None

        admin.delete_webhook(hook.id)
        with pytest.raises(NotFoundError):
            admin.get_webhook(hook.id)
        with pytest.raises(NotFoundError):
            admin.resend_delivery(hook.id, first[0].id)


def test_the_async_client_manages_webhooks_too(
    server: Server, receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, received = receiver

    async def scenario() -> None:
        async with AsyncAkenerClient(server.url, server.admin_key) as admin:
            hook = await admin.create_webhook(url, ["key.deactivated"])
            assert hook.id in {w.id for w in await admin.list_webhooks()}
            assert (await admin.get_webhook(hook.id)).events == ("key.deactivated",)
            key = await admin.create_key(f"async hooked {uuid.uuid4().hex[:10]}")
            await admin.deactivate_key(key.id)
            deadline = time.monotonic() + 20
            while True:
                deliveries = await admin.list_deliveries(hook.id, limit=5)
                if deliveries and deliveries[0].state == "delivered":
                    break
                assert time.monotonic() < deadline, deliveries
                await asyncio.sleep(0.1)
            resent = await admin.resend_delivery(hook.id, deliveries[0].id)
            assert resent.id == deliveries[0].id
            updated = await admin.update_webhook(hook.id, description="async")
            assert updated.description == "async"
            rotated = await admin.rotate_webhook_secret(hook.id)
            assert rotated.secret.startswith("whsec_") and rotated.secret != hook.secret
            await admin.delete_webhook(hook.id)
            with pytest.raises(NotFoundError):
                await admin.list_deliveries(hook.id)

    asyncio.run(scenario())
    assert received  # what akener reported delivered did arrive
