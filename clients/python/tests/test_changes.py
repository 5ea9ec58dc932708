"""The change stream through the client, against a real server: live, and resumed by id."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from akener_client import AkenerClient, AsyncAkenerClient, NotFoundError
from akener_client.models import ServerEvent
from tests.conftest import Server


async def _until(
    events: AsyncIterator[ServerEvent], wanted: str, key_id: str | None = None
) -> ServerEvent:
    """The next event named ``wanted`` (about ``key_id`` when given), within 10 s each."""
    while True:
        event = await asyncio.wait_for(anext(events), 10)
        if event.event == wanted and (key_id is None or key_id in json.dumps(event.data)):
            return event


def test_a_change_arrives_live_and_again_when_resumed(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncAkenerClient(server.url, server.admin_key) as akener:
            key = await akener.create_key(f"streamed {uuid.uuid4().hex[:10]}")
            live = akener.iter_changes()
            try:
                ready = await _until(live, "ready")
            except NotFoundError:
                pytest.skip("this server has no change stream yet")
            assert ready.id is not None
            await akener.deactivate_key(key.id)
            change = await _until(live, "change", key.id)
            assert key.key not in json.dumps(change.data)  # ids and fields, never the secret
            await live.aclose()  # type: ignore[attr-defined]

            resumed = akener.iter_changes(last_event_id=ready.id)
            again = await _until(resumed, "change", key.id)
            assert again.data == change.data
            await resumed.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_the_sync_client_reads_the_stream_too(server: Server) -> None:
    with AkenerClient(server.url, server.admin_key) as akener:
        key = akener.create_key(f"streamed sync {uuid.uuid4().hex[:10]}")
        events = akener.iter_changes()
        try:
            first = next(e for e in events if e.event == "ready")
        except NotFoundError:
            pytest.skip("this server has no change stream yet")
        assert first.id is not None
        akener.delete_key(key.id)
        # Bounded: each read waits at most 45 s (three missed heartbeats), and the change is
        # sent within milliseconds.
        change = next(e for e in events if e.event == "change" and key.id in json.dumps(e.data))
        assert key.key not in json.dumps(change.data)
        events.close()  # type: ignore[attr-defined]
