"""``key.rate_limited`` and ``key.credits_exhausted`` webhooks: one per key per window or refill
period, whatever the number of refused requests, delivered signed to a real receiver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from akener.app import AkenerApp
from akener.events.models import OutboxEvent
from akener.settings import Settings
from tests.factories import FakeClock, bearer, make_key
from tests.receivers import Receiver

EVENTS = ["key.rate_limited", "key.credits_exhausted"]
# 30 s into a minute, 30 s before a new month.
EVE = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)


@pytest.fixture
async def hooked(settings: Settings, clock: FakeClock) -> AsyncIterator[AkenerApp]:
    """A started app on ``clock`` whose webhooks may go to loopback, polling quickly."""
    update = {
        "webhooks_allow_private": True,
        "webhooks_poll_seconds": 0.05,
        "webhooks_timeout_seconds": 1.0,
    }
    app = AkenerApp(settings.model_copy(update=update), clock=clock)
    async with app.running():
        yield app


@pytest.fixture
async def api(hooked: AkenerApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``hooked`` carrying an all-powerful key."""
    _, key = await make_key(hooked.runtime, "admin")
    transport = httpx.ASGITransport(app=hooked)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://akener.test", headers=bearer(key)
    ) as client:
        yield client


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (really) until ``check()`` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _key(api: httpx.AsyncClient, name: str, **limits: object) -> tuple[str, str]:
    made = await api.post("/api/v1/keys", json={"name": name, "scopes": [], **limits})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


async def _hammer(api: httpx.AsyncClient, key: str, n: int) -> list[int]:
    return [(await api.get("/authz", headers=bearer(key))).status_code for _ in range(n)]


async def _count(app: AkenerApp, event_type: str) -> int:
    async with app.runtime.sessionmaker() as session:
        stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == event_type)
        return int(await session.scalar(stmt) or 0)


async def test_a_full_window_sends_one_signed_event_per_window(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    clock.now = EVE
    refusals = hooked.runtime.verifier.refusals
    assert refusals is not None
    with Receiver() as receiver:
        hook = await api.post("/api/v1/webhooks", json={"url": receiver.url, "events": EVENTS})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]
        window = {"name": "burst", "limit": 2, "period_seconds": 60}
        key_id, key = await _key(api, "limited", rate_limits=[window])
        assert await _hammer(api, key, 50) == [200, 200] + [429] * 48
        await refusals.flush()
        await until(lambda: len(receiver.got) == 1)
        # Another process that refused the same window: the fleet still writes one event.
        refusals.hit.clear()
        assert await _hammer(api, key, 5) == [429] * 5
        assert await refusals.flush() == 0
        clock.advance(seconds=30)  # the next minute: a new window, filled again
        assert await _hammer(api, key, 4) == [200, 200, 429, 429]
        await refusals.flush()
        await until(lambda: len(receiver.got) == 2)
        await asyncio.sleep(0.3)  # nothing else arrives
        payloads = receiver.verified(secret)
    assert len(receiver.got) == 2
    assert [p["type"] for p in payloads] == ["key.rate_limited"] * 2
    first = payloads[0]["data"]
    assert isinstance(first, dict)
    assert first["key"]["id"] == key_id and first["actor"] == "akener"
    assert first["window"] == {
        "name": "burst",
        "limit": 2,
        "period_seconds": 60,
        "applies_to": "key",
    }
    assert first["resets_at"] == "2027-01-01T00:00:00+00:00"
    assert payloads[1]["data"]["resets_at"] == "2027-01-01T00:01:00+00:00"  # type: ignore[index]
    assert key.encode() not in b"".join(r.body for r in receiver.got)
    assert await _count(hooked, "key.rate_limited") == 2


async def test_credits_running_out_send_one_event_per_refill_period(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    clock.now = EVE
    refusals = hooked.runtime.verifier.refusals
    assert refusals is not None
    with Receiver() as receiver:
        hook = await api.post("/api/v1/webhooks", json={"url": receiver.url, "events": EVENTS})
        secret = hook.json()["secret"]
        credits = {"remaining": 3, "refill": {"amount": 2, "interval": "monthly"}}
        key_id, key = await _key(api, "metered", credits=credits, owner_id="customer_7")
        assert await _hammer(api, key, 20) == [200] * 3 + [429] * 17
        await refusals.flush()
        await until(lambda: len(receiver.got) == 1)
        clock.advance(seconds=30)  # 2027-01-01: refilled to 2
        assert await _hammer(api, key, 6) == [200, 200, 429, 429, 429, 429]
        await refusals.flush()
        await until(lambda: len(receiver.got) == 2)
        await asyncio.sleep(0.3)
        payloads = receiver.verified(secret)
    assert len(receiver.got) == 2
    assert [p["type"] for p in payloads] == ["key.credits_exhausted"] * 2
    data = payloads[0]["data"]
    assert isinstance(data, dict)
    assert data["key"]["id"] == key_id and data["owner_id"] == "customer_7"
    assert data["credits"] == {
        "applies_to": "key",
        "remaining": 0,
        "refill_at": "2027-01-01T00:00:00+00:00",
    }
    assert json.dumps(payloads[1]["data"]["credits"]["refill_at"]) == (  # type: ignore[index]
        '"2027-02-01T00:00:00+00:00"'
    )


async def test_unsubscribed_installations_get_the_event_in_the_outbox_only_once(
    api: httpx.AsyncClient, hooked: AkenerApp
) -> None:
    refusals = hooked.runtime.verifier.refusals
    assert refusals is not None
    window = {"name": "daily", "limit": 1, "period_seconds": 86_400}
    _, key = await _key(api, "quiet", rate_limits=[window])
    for _ in range(3):
        await _hammer(api, key, 10)
        await refusals.flush()
        refusals.hit.clear()  # as if each round were served by another process
    assert await _count(hooked, "key.rate_limited") == 1
