"""GET /api/v1/keys/changes against a real ``akener serve``: ready, changes, heartbeats, resume
with Last-Event-ID, reset, the caller's own key ending the stream, no secret in the stream."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from akener.db.base import utcnow
from akener.events.outbox import emit_event
from akener.keys import service
from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import CLI_PRINCIPAL, bearer, make_key
from tests.servers import AkenerServer, akener_cli, akener_env
from tests.sse import Event, SseReader

CHANGES = "/api/v1/keys/changes"
VERIFY = ["api_keys.verify"]


@asynccontextmanager
async def stream(
    client: httpx.AsyncClient, url: str, key: str, last_id: str | None = None
) -> AsyncIterator[SseReader]:
    """An open change stream as ``key``."""
    headers = bearer(key) | ({"Last-Event-ID": last_id} if last_id is not None else {})
    async with client.stream("GET", url + CHANGES, headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response)


async def _change(
    client: httpx.AsyncClient, url: str, admin: str, method: str, key_id: str, **kw: object
) -> float:
    started = time.perf_counter()
    answer = await client.request(
        method, f"{url}/api/v1/keys/{key_id}", headers=bearer(admin), **kw
    )
    assert answer.is_success, answer.text
    return started


def _no_secrets(text: str, *plaintexts: str) -> None:
    for plaintext in plaintexts:
        assert plaintext not in text and plaintext[-64:] not in text
    assert not re.search(r"[0-9a-f]{64}", text), "something digest-like is in the stream"


@pytest.fixture
async def direct(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime on the test's database, for making keys and changes behind the server's back."""
    runtime = await Runtime.start(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


def _env(settings: Settings) -> dict[str, str]:
    return akener_env(settings.database_url, TEST_SECRET, AKENER_CHANGES_HEARTBEAT_SECONDS="1")


async def test_ready_changes_heartbeat_resume_and_reset(
    settings: Settings, direct: Runtime, tmp_path: Path
) -> None:
    admin_row, admin = await make_key(direct, "admin")
    watcher_row, watcher = await make_key(direct, "watcher", scopes=VERIFY)
    victim_row, victim = await make_key(direct, "victim", scopes=["orders.read"])
    other_row, other = await make_key(direct, "other", scopes=["orders.read"])
    ours = {admin_row.id, watcher_row.id, victim_row.id, other_row.id}
    seen: list[str] = []
    with AkenerServer(_env(settings), tmp_path / "srv") as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            async with stream(client, srv.url, watcher) as events:
                ready = await events.next()
                assert ready is not None and ready.event == "ready" and ready.id
                assert ready.data == {"heartbeat_seconds": 1.0}

                # A deactivation through the API reaches the stream.
                started = await _change(
                    client, srv.url, admin, "PATCH", victim_row.id, json={"status": "INACTIVE"}
                )
                change = await events.until("change", within=2)
                latency = time.perf_counter() - started
                assert change.data["key_id"] == victim_row.id
                assert change.data["change"] == "deactivated"
                assert change.id
                assert latency < 3.0, latency  # bench/verifier.py measures it; this only bounds it

                # What changed is named, never its value.
                await _change(client, srv.url, admin, "PATCH", other_row.id, json={"scopes": []})
                change = await events.until("change")
                assert (change.data["key_id"], change.data["change"]) == (other_row.id, "updated")
                assert change.data["fields"] == ["scopes"]

                # A change made by another process (the CLI) reaches it too.
                done = akener_cli(_env(settings), tmp_path, "keys", "deactivate", other_row.id)
                assert done.returncode == 0, done.stderr
                change = await events.until("change", within=3)
                assert (change.data["key_id"], change.data["change"]) == (
                    other_row.id,
                    "deactivated",
                )

                # Heartbeats come every second here, with a cursor.
                beat = await events.next(within=3)
                assert beat is not None and beat.event == "heartbeat" and beat.id
                seen += events.raw
                last = events.last_id
            assert last is not None

            # While nobody listens, the victim is deleted; resuming replays it, then ready.
            await _change(client, srv.url, admin, "DELETE", victim_row.id)
            async with stream(client, srv.url, watcher, last_id=last) as events:
                first = await events.next()
                assert first is not None and first.event == "change", first
                assert (first.data["key_id"], first.data["change"]) == (victim_row.id, "deleted")
                ready = await events.next()
                assert ready is not None and ready.event == "ready"
                seen += events.raw

            # Resuming from the newest cursor brings nothing new. On PostgreSQL a transaction
            # open anywhere in the cluster (another test's, a pg_dump) holds the cursor behind
            # it (a lower id may still commit), so changes may come again: at least once, and
            # only changes that happened.
            async with stream(client, srv.url, watcher, last_id=ready.id) as events:
                while (event := await events.next()) is not None and event.event != "ready":
                    assert event.event in ("change", "heartbeat"), event
                    if event.event == "change":
                        assert event.data["key_id"] in ours, event
                assert event is not None and event.event == "ready"

            # A cursor that is garbage, from the future or older than retention: reset first.
            now = int(time.time())
            for cursor, reason in (
                ("garbage", "unknown cursor"),
                (f"999999999-{now}", "unknown cursor"),
                (f"1-{now - 40 * 86400}", "cursor too old"),
            ):
                async with stream(client, srv.url, watcher, last_id=cursor) as events:
                    reset = await events.next()
                    assert reset is not None and reset.event == "reset"
                    assert reset.data == {"reason": reason} and reset.id
                    assert (await events.next()) == Event(
                        "ready", {"heartbeat_seconds": 1.0}, reset.id
                    )
                    seen += events.raw

            # Refused: no key, a key without api_keys.verify, a switched-off key.
            assert (await client.get(srv.url + CHANGES)).status_code == 401
            answer = await client.get(srv.url + CHANGES, headers=bearer(victim))
            assert answer.status_code == 401
            _, reader = await make_key(direct, "reader", scopes=["api_keys.read"])
            answer = await client.get(srv.url + CHANGES, headers=bearer(reader))
            assert answer.status_code == 403
            assert answer.json()["error"]["code"] == "FORBIDDEN"
    _no_secrets("\n".join(seen), admin, watcher, victim, other)


async def test_the_stream_ends_when_its_own_key_stops_being_valid(
    settings: Settings, direct: Runtime, tmp_path: Path
) -> None:
    _, admin = await make_key(direct, "admin")
    watchers = [await make_key(direct, f"w{i}", scopes=VERIFY) for i in range(3)]
    with AkenerServer(_env(settings), tmp_path / "srv") as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            actions = [
                ("PATCH", {"json": {"status": "INACTIVE"}}),
                ("DELETE", {}),
                ("PATCH", {"json": {"scopes": []}}),  # no longer api_keys.verify
            ]
            for (row, key), (method, kw) in zip(watchers, actions, strict=True):
                async with stream(client, srv.url, key) as events:
                    await events.until("ready")
                    started = await _change(client, srv.url, admin, method, row.id, **kw)
                    end = await events.until("end", within=2, skip=("change",))
                    assert end.data == {"reason": "key no longer valid"}
                    assert time.perf_counter() - started < 3.0
                    assert await events.next() is None  # the server closed it
            async with direct.sessionmaker() as session:
                soon, soon_key = await service.create_key(
                    session,
                    CLI_PRINCIPAL,
                    name="soon",
                    scopes=VERIFY,
                    peppers=direct.peppers,
                    expires_at=utcnow() + timedelta(seconds=2),
                )
                await session.commit()
            async with stream(client, srv.url, soon_key) as events:
                await events.until("ready")
                end = await events.until("end", within=6, skip=("change",))
                assert end.data == {"reason": "key no longer valid"}
                assert soon.expires_at is not None and utcnow() >= soon.expires_at
                assert await events.next() is None


@pytest.mark.postgres_only
async def test_a_lower_id_that_commits_later_is_not_skipped(
    settings: Settings, direct: Runtime, tmp_path: Path, backend: str
) -> None:
    _, watcher = await make_key(direct, "watcher", scopes=VERIFY)
    with AkenerServer(_env(settings), tmp_path / "srv") as srv:
        async with httpx.AsyncClient(timeout=10) as client:
            async with stream(client, srv.url, watcher) as events:
                await events.until("ready")
                async with direct.sessionmaker() as slow:
                    # The slow transaction draws its id first and commits last.
                    await emit_event(slow, "key.deactivated", key_id="a" * 32, data={})
                    async with direct.sessionmaker() as fast:
                        await emit_event(fast, "key.deleted", key_id="b" * 32, data={})
                        await fast.commit()
                    change = await events.until("change")
                    assert change.data["key_id"] == "b" * 32
                    cursor = change.id
                    await slow.commit()
                change = await events.until("change")
                assert change.data["key_id"] == "a" * 32
            # The cursor handed out with b (before a committed) still replays a.
            async with stream(client, srv.url, watcher, last_id=cursor) as events:
                replayed = []
                while (event := await events.next()) is not None and event.event == "change":
                    replayed.append(event.data["key_id"])
                assert event is not None and event.event == "ready"
                assert "a" * 32 in replayed


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
async def test_a_stopping_server_ends_its_streams_at_once(
    settings: Settings, direct: Runtime, tmp_path: Path, server: str
) -> None:
    _, watcher = await make_key(direct, "watcher", scopes=VERIFY)
    srv = AkenerServer(_env(settings), tmp_path / "srv", server=server)
    with srv:
        async with (
            httpx.AsyncClient(timeout=10) as client,
            stream(client, srv.url, watcher) as events,
        ):
            await events.until("ready")
            assert srv.process is not None
            started = time.perf_counter()
            srv.process.terminate()
            end = await events.until("end", within=5)
            assert end.data == {"reason": "shutting down"}
            assert await events.next() is None
            srv.process.wait(timeout=10)
            assert time.perf_counter() - started < 5
