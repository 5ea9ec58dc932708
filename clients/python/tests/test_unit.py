"""The client without a server: credentials, paths, errors, redirects, timeouts, SSE parsing."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from akener_client import (
    AkenerAPIError,
    AkenerClient,
    AkenerError,
    AkenerTransportError,
    AsyncAkenerClient,
    ServiceUnavailableError,
)
from akener_client._http import SSEParser
from akener_client.models import ServerEvent

KEY = "akener_" + "ab" * 32


def client_with(handler: httpx.MockTransport) -> AkenerClient:
    """A client whose requests go to ``handler`` instead of the network."""
    return AkenerClient("http://akener.test", KEY, transport=handler)


@pytest.mark.parametrize(
    "bad", ["", "akener_", "Bearer " + KEY, KEY.upper(), KEY + "\n", KEY[:-1] + "g"]
)
def test_a_malformed_key_is_refused_without_repeating_it(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        AkenerClient("http://akener.test", bad)
    # One fixed message, whatever was given: nothing of it is repeated.
    assert str(caught.value) == (
        "not an akener key: expected akener_ followed by 64 lowercase hex digits"
    )


def test_the_key_is_in_the_header_and_nowhere_in_repr() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = client_with(httpx.MockTransport(handler))
    client.delete_key("k1")
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert seen[0].headers["user-agent"].startswith("akener-client/")
    assert KEY not in repr(client) and KEY not in str(vars(client).get("url"))


def test_ids_cannot_change_the_path() -> None:
    paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        return httpx.Response(204)

    client = client_with(httpx.MockTransport(handler))
    client.delete_key("../../whoami?x=1#y")
    client.delete_webhook("a/b")
    assert paths == [
        b"/api/v1/keys/..%2F..%2Fwhoami%3Fx%3D1%23y",
        b"/api/v1/webhooks/a%2Fb",
    ]
    with pytest.raises(ValueError):
        client.get_key("")


def test_a_path_prefix_in_the_url_is_kept() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(204)

    client = AkenerClient(
        "https://example.test/akener/", KEY, transport=httpx.MockTransport(handler)
    )
    client.delete_key("k")
    assert paths == ["/akener/api/v1/keys/k"]


def test_redirects_are_not_followed_so_the_key_stays_home() -> None:
    hits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(307, headers={"location": "https://elsewhere.test/steal"})

    with pytest.raises(AkenerAPIError) as caught:
        client_with(httpx.MockTransport(handler)).whoami()
    assert caught.value.status == 307 and caught.value.code == "HTTP_307"
    assert hits == ["http://akener.test/api/v1/whoami"]


def test_an_error_that_is_not_akener_s_keeps_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="<html>bad gateway</html>", headers={"retry-after": "7"})

    with pytest.raises(ServiceUnavailableError) as caught:
        client_with(httpx.MockTransport(handler)).whoami()
    assert caught.value.code == "HTTP_503" and caught.value.retry_after == 7.0


def test_a_success_with_a_body_akener_never_sends_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"unexpected": True})

    with pytest.raises(AkenerError, match="unexpected answer"):
        client_with(httpx.MockTransport(handler)).whoami()


def test_an_unreachable_server_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        client = AkenerClient(f"http://127.0.0.1:{port}", KEY)
        with client, pytest.raises(AkenerTransportError) as caught:
            client.whoami()
    assert KEY not in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def test_a_silent_server_times_out(silent_server: int) -> None:
    client = AkenerClient(f"http://127.0.0.1:{silent_server}", KEY, timeout=0.3)
    with client, pytest.raises(AkenerTransportError, match="timed out"):
        client.whoami()


def test_the_async_client_times_out_too(silent_server: int) -> None:
    async def ask() -> None:
        async with AsyncAkenerClient(f"http://127.0.0.1:{silent_server}", KEY, timeout=0.3) as c:
            await c.whoami()

    with pytest.raises(AkenerTransportError, match="timed out"):
        asyncio.run(ask())


def test_sse_lines_become_events() -> None:
    parser = SSEParser()
    lines = [
        ": heartbeat",
        "",
        "event: ready",
        "",
        "id: 41",
        "event: key.changed",
        'data: {"id": "k1",',
        'data: "what": "status"}',
        "",
        "id: 42",
        "data: plain text",
        "",
        "event: reset",
        "data:",
        "",
    ]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [
        ServerEvent(event="ready", data=None, id=None),
        ServerEvent(event="key.changed", data={"id": "k1", "what": "status"}, id="41"),
        ServerEvent(event="message", data="plain text", id="42"),
        ServerEvent(event="reset", data="", id="42"),
    ]
    assert parser.last_id == "42"


def test_the_change_stream_is_read_and_resumed_from_the_last_event_id() -> None:
    seen: list[httpx.Request] = []
    body = b'event: ready\ndata: {}\n\nid: 7\nevent: key.changed\ndata: {"id": "k"}\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    events = list(client_with(httpx.MockTransport(handler)).iter_changes(last_event_id="6"))
    assert [e.event for e in events] == ["ready", "key.changed"] and events[1].id == "7"
    assert seen[0].headers["last-event-id"] == "6"
    assert seen[0].headers["accept"] == "text/event-stream"
    assert json.loads(json.dumps(events[1].data)) == {"id": "k"}


def test_a_verify_answer_is_read_with_the_fields_a_cache_needs() -> None:
    answer = {
        "valid": True,
        "code": "VALID",
        "key": {
            "id": "k1",
            "name": "CI",
            "scopes": ["a", "b"],
            "owner_id": "customer_42",
            "expires_at": "2027-01-01T00:00:00Z",
            "limited": True,
            "something_new": 1,  # a newer server's field is ignored
        },
        "limits": {
            "windows": [{"name": "r", "limit": 10, "remaining": 9, "reset_seconds": 60}],
            "credits": {"remaining": None, "refill_at": None},
        },
    }
    sent: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json=answer)

    result = client_with(httpx.MockTransport(handler)).verify_key(KEY, ["a"], ip="10.0.0.1")
    assert json.loads(sent[0]) == {"key": KEY, "scopes": ["a"], "ip": "10.0.0.1"}
    assert result.valid and result.key is not None
    assert (result.key.owner_id, result.key.limited) == ("customer_42", True)
    assert result.key.expires_at is not None and result.key.expires_at.year == 2027
    assert result.key.expires_at.tzinfo is not None
    assert result.limits is not None and result.limits.windows[0].remaining == 9
    assert result.limits.credits is not None and result.limits.credits.remaining is None


def test_a_patch_sends_only_what_was_given_and_null_to_clear() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    client = client_with(httpx.MockTransport(handler))
    with pytest.raises(AkenerError):  # 204 is not a Key: the body is what this test reads
        client.update_key("k", name="new")
    with pytest.raises(AkenerError):
        client.update_key("k", expires_at=None, owner_id=None, credits=None, rate_limits=[])
    assert bodies == [
        {"name": "new"},
        {"expires_at": None, "owner_id": None, "credits": None, "rate_limits": []},
    ]


def test_times_without_a_zone_are_refused_before_sending() -> None:
    from datetime import datetime

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    client = client_with(httpx.MockTransport(handler))
    with pytest.raises(ValueError, match="time zone"):
        client.create_key("k", expires_at=datetime(2030, 1, 1))
