"""Signed webhooks: outbox, delivery to a real receiver, retries, address policy, secrets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from akener.app import AkenerApp
from akener.events.delivery import Poster
from akener.events.models import DeliveryState, OutboxEvent, WebhookDelivery, WebhookEndpoint
from akener.events.sealing import SecretBox
from akener.events.sender import RETRY_SCHEDULE
from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import FakeClock, bearer, make_key
from tests.receivers import Receiver

ALL_EVENTS = ["key.created", "key.updated", "key.activated", "key.deactivated", "key.deleted"]


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Webhooks to 127.0.0.1 allowed (the receiver is local), a quick poll and short timeout."""
    return settings.model_copy(
        update={
            "webhooks_allow_private": True,
            "webhooks_poll_seconds": 0.05,
            "webhooks_timeout_seconds": 1.0,
        }
    )


@pytest.fixture
async def hooked(hook_settings: Settings, clock: FakeClock) -> AsyncIterator[AkenerApp]:
    """A started app with webhooks allowed to loopback, on ``clock``."""
    app = AkenerApp(hook_settings, clock=clock)
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


async def register(api: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, object]:
    answer = await api.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, object] = answer.json()
    return body


async def test_key_changes_reach_a_receiver_signed_in_order(
    api: httpx.AsyncClient, hooked: AkenerApp
) -> None:
    with Receiver() as receiver:
        hook = await register(api, receiver.url, ALL_EVENTS)
        secret = str(hook["secret"])
        assert secret.startswith("whsec_")
        made = await api.post("/api/v1/keys", json={"name": "ci"})
        plaintext, key_id = made.json()["key"], made.json()["id"]
        await api.patch(f"/api/v1/keys/{key_id}", json={"status": "INACTIVE"})
        await api.patch(f"/api/v1/keys/{key_id}", json={"name": "ci-2"})
        await api.delete(f"/api/v1/keys/{key_id}")
        await until(lambda: len(receiver.got) >= 4)
        payloads = receiver.verified(secret)
    assert [p["type"] for p in payloads] == [
        "key.created",
        "key.deactivated",
        "key.updated",
        "key.deleted",
    ]
    assert all(p["data"]["key"]["id"] == key_id for p in payloads)  # type: ignore[index]
    raw = b"".join(r.body for r in receiver.got)
    assert plaintext.encode() not in raw and b"digest" not in raw
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 4
    # Nothing the endpoint did not subscribe to, and nothing stored in the clear.
    async with hooked.runtime.sessionmaker() as session:
        stored = await session.scalar(select(WebhookEndpoint.sealed_secret))
    assert stored is not None and secret not in stored and secret[6:] not in stored


async def test_a_forged_or_altered_delivery_does_not_verify(
    api: httpx.AsyncClient, hooked: AkenerApp
) -> None:
    with Receiver() as receiver:
        hook = await register(api, receiver.url, ["key.created"])
        await api.post("/api/v1/keys", json={"name": "k"})
        await until(lambda: len(receiver.got) == 1)
    item = receiver.got[0]
    Webhook(str(hook["secret"])).verify(item.body, item.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(str(hook["secret"])).verify(item.body.replace(b"k", b"x"), item.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(item.body, item.headers)


async def test_a_change_that_rolls_back_writes_no_event(
    api: httpx.AsyncClient, hooked: AkenerApp
) -> None:
    await api.post("/api/v1/keys", json={"name": "taken"})
    assert (await api.post("/api/v1/keys", json={"name": "taken"})).status_code == 409
    async with hooked.runtime.sessionmaker() as session:
        types = (await session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id))).all()
    assert types == ["key.created", "key.created"]  # the admin key's and the first "taken"


async def _deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    async with runtime.sessionmaker() as session:
        return list((await session.scalars(select(WebhookDelivery))).all())


async def test_receiver_down_then_up_gets_everything_on_the_retry_schedule(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    with Receiver(status=503) as receiver:
        hook = await register(api, receiver.url, ["key.created"])
        await api.post("/api/v1/keys", json={"name": "a"})
        await until(lambda: len(receiver.got) == 1)  # the first attempt, at once
        await asyncio.sleep(0.3)
        assert len(receiver.got) == 1  # the next waits for the schedule's 5 s
        [delivery] = await _deliveries(hooked.runtime)
        assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1
        assert delivery.last_status == 503
        assert delivery.next_attempt_at == clock() + RETRY_SCHEDULE[0]
        receiver.status = 200
        clock.advance(seconds=5)
        await until(lambda: len(receiver.got) == 2)
    await asyncio.sleep(0.2)
    [delivery] = await _deliveries(hooked.runtime)
    assert delivery.state == DeliveryState.DELIVERED and delivery.attempts == 2
    log = await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
    assert log.json()["items"][0]["state"] == "delivered"


async def test_a_delivery_gives_up_after_about_a_day_and_resend_retries_at_once(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    total = sum(RETRY_SCHEDULE, start=RETRY_SCHEDULE[0] * 0)
    assert 20 * 3600 <= total.total_seconds() <= 24 * 3600
    with Receiver(status=500) as receiver:
        hook = await register(api, receiver.url, ["key.created"])
        await api.post("/api/v1/keys", json={"name": "a"})
        await until(lambda: len(receiver.got) == 1)
        for n, wait in enumerate(RETRY_SCHEDULE, start=2):
            clock.advance(seconds=wait.total_seconds())
            await until(lambda n=n: len(receiver.got) == n)  # type: ignore[misc]
        await asyncio.sleep(0.2)
        [delivery] = await _deliveries(hooked.runtime)
        assert delivery.state == DeliveryState.FAILED
        assert delivery.attempts == len(RETRY_SCHEDULE) + 1
        receiver.status = 200
        resent = await api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery.id}/resend")
        assert resent.status_code == 200
        await until(lambda: len(receiver.got) == len(RETRY_SCHEDULE) + 2)
    await asyncio.sleep(0.2)
    [delivery] = await _deliveries(hooked.runtime)
    assert delivery.state == DeliveryState.DELIVERED


async def test_redirects_are_not_followed(api: httpx.AsyncClient, hooked: AkenerApp) -> None:
    with Receiver(status=200) as target, Receiver(status=307) as receiver:
        receiver.location = target.url
        await register(api, receiver.url, ["key.created"])
        await api.post("/api/v1/keys", json={"name": "a"})
        await until(lambda: len(receiver.got) == 1)
        await asyncio.sleep(0.3)
    assert target.got == []
    [delivery] = await _deliveries(hooked.runtime)
    assert delivery.state == DeliveryState.PENDING and delivery.last_status == 307


async def test_a_slow_receiver_does_not_stall_the_others(
    api: httpx.AsyncClient, hooked: AkenerApp
) -> None:
    with Receiver(delay=5) as slow, Receiver() as quick:
        await register(api, slow.url, ["key.created"])
        await register(api, quick.url, ["key.created"])
        started = time.monotonic()
        await api.post("/api/v1/keys", json={"name": "a"})
        await until(lambda: len(quick.got) == 1, seconds=3)
        assert time.monotonic() - started < 3
        await asyncio.sleep(1.5)  # past the 1 s timeout
        deliveries = {d.endpoint_id: d for d in await _deliveries(hooked.runtime)}
    errors = [d.last_error for d in deliveries.values() if d.state == DeliveryState.PENDING]
    assert errors and "no answer within" in str(errors[0])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://app.localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "http://example.com/\x00hook",
    ],
)
async def test_registering_a_private_or_odd_address_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, url: str
) -> None:
    _, key = await make_key(runtime, "admin")
    answer = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["key.created"]}, headers=bearer(key)
    )
    assert answer.status_code == 422, answer.text
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(WebhookEndpoint))).all() == []


async def test_delivery_checks_the_address_it_connects_to() -> None:
    """A name that resolves to loopback (as a rebinding attacker's would) is never connected."""
    with Receiver() as receiver:
        poster = Poster(allow_private=False, timeout=1)
        try:
            outcome = await poster.post(f"http://localhost:{receiver.port}/hook", {}, b"{}")
        finally:
            await poster.close()
    assert outcome.status is None and "no public address" in str(outcome.error)
    assert receiver.got == []


async def test_rotating_the_secret_signs_with_both_during_the_overlap(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    with Receiver() as receiver:
        hook = await register(api, receiver.url, ["key.created"])
        rotated = await api.post(
            f"/api/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_seconds": 3600}
        )
        assert rotated.status_code == 200
        new = rotated.json()["secret"]
        assert new != hook["secret"]
        await api.post("/api/v1/keys", json={"name": "a"})
        await until(lambda: len(receiver.got) == 1)
        item = receiver.got[0]
        assert len(item.headers["webhook-signature"].split(" ")) == 2
        Webhook(str(hook["secret"])).verify(item.body, item.headers)
        Webhook(new).verify(item.body, item.headers)
        clock.advance(seconds=3601)
        await api.post("/api/v1/keys", json={"name": "b"})
        await until(lambda: len(receiver.got) == 2)
    later = receiver.got[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(str(hook["secret"])).verify(later.body, later.headers)


def test_signing_secrets_survive_a_server_secret_rotation() -> None:
    old = SecretBox.from_secrets({1: TEST_SECRET.encode()}, 1)
    sealed, version = old.seal("whsec_abc")
    new = SecretBox.from_secrets({1: TEST_SECRET.encode(), 2: b"n" * 48}, 2)
    assert new.open(sealed, version) == "whsec_abc"
    assert new.seal("x")[1] == 2


async def test_endpoint_count_is_capped(hook_settings: Settings, clock: FakeClock) -> None:
    app = AkenerApp(hook_settings.model_copy(update={"webhooks_max_endpoints": 2}), clock=clock)
    async with app.running():
        _, key = await make_key(app.runtime, "admin")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer(key)
        ) as api:
            body = {"url": "http://127.0.0.1:9/h", "events": ["key.created"]}
            codes = [(await api.post("/api/v1/webhooks", json=body)).status_code for _ in range(3)]
    assert codes == [201, 201, 409]


async def test_retention_prunes_old_finished_events_and_keeps_pending_ones(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    from datetime import timedelta

    from akener.db.engine import begin_write
    from akener.retention.service import RetentionPolicy, prune

    await register(api, "http://127.0.0.1:9/never-answers", ["key.created"])
    await api.post("/api/v1/keys", json={"name": "pending"})
    async with hooked.runtime.sessionmaker() as session:
        await begin_write(session)
        for event in (await session.scalars(select(OutboxEvent))).all():
            event.occurred_at = clock() - timedelta(days=40)
        await session.commit()
    policy = RetentionPolicy(None, None, None, events=timedelta(days=30))
    async with hooked.runtime.sessionmaker() as session:
        await begin_write(session)
        first = await prune(session, policy, now=clock())
        await session.commit()
    # The admin key's event had no delivery: pruned. The other waits on a pending delivery.
    assert first.events == 1
    async with hooked.runtime.sessionmaker() as session:
        await begin_write(session)
        await session.execute(
            WebhookDelivery.__table__.update().values(state=DeliveryState.FAILED)  # type: ignore[attr-defined]
        )
        await session.commit()
    async with hooked.runtime.sessionmaker() as session:
        await begin_write(session)
        second = await prune(session, policy, now=clock())
        await session.commit()
        left = (await session.scalars(select(OutboxEvent))).all()
    assert second.events == 1 and left == []


async def test_expiry_is_announced_7_days_and_1_day_ahead_then_once_expired(
    api: httpx.AsyncClient, hooked: AkenerApp, clock: FakeClock
) -> None:
    from datetime import timedelta

    from akener.db.engine import begin_write
    from akener.keys.expiry import announce_expiries

    expires = (clock() + timedelta(days=3)).isoformat()
    made = await api.post("/api/v1/keys", json={"name": "temp", "expires_at": expires})
    assert made.status_code == 201, made.text

    async def announce() -> list[tuple[str, object]]:
        async with hooked.runtime.sessionmaker() as session:
            await begin_write(session)
            await announce_expiries(session, clock())
            await session.commit()
            rows = (
                await session.scalars(
                    select(OutboxEvent).where(OutboxEvent.type.in_(["key.expiring", "key.expired"]))
                )
            ).all()
        return [(r.type, r.payload["data"].get("expires_in")) for r in rows]

    assert await announce() == [("key.expiring", "7d")]
    assert await announce() == [("key.expiring", "7d")]  # written once
    clock.advance(days=2, hours=1)
    assert await announce() == [("key.expiring", "7d"), ("key.expiring", "1d")]
    clock.advance(days=1)
    found = await announce()
    assert found[-1] == ("key.expired", None) and len(found) == 3
    assert await announce() == found


async def test_webhook_api_reads_changes_and_deletes(
    api: httpx.AsyncClient, hooked: AkenerApp
) -> None:
    hook = await register(api, "http://127.0.0.1:9/a", ["key.created"])
    url = f"/api/v1/webhooks/{hook['id']}"
    read = await api.get(url)
    assert read.status_code == 200 and "secret" not in read.json()
    assert (await api.get("/api/v1/webhooks")).json()["items"][0]["id"] == hook["id"]
    changed = await api.patch(url, json={"events": ["key.deleted", "key.created"]})
    assert changed.json()["events"] == ["key.created", "key.deleted"]
    assert (await api.patch(url, json={"events": ["key.nope"]})).status_code == 422
    assert (await api.patch(url, json={"url": "gopher://x"})).status_code == 422
    assert (await api.patch(url, json={"secret": "mine"})).status_code == 422
    missing = f"/api/v1/webhooks/{'0' * 32}/deliveries/{'0' * 32}/resend"
    assert (await api.post(missing)).status_code == 404
    assert (await api.post(f"{url}/deliveries/{'0' * 32}/resend")).status_code == 404
    assert (await api.delete(url)).status_code == 204
    assert (await api.get(url)).status_code == 404
    assert (await api.get(f"{url}/deliveries")).status_code == 404
    audit = await api.get("/api/v1/audit", params={"target": "webhook"})
    actions = [e["action"] for e in audit.json()["items"]]
    assert actions == ["webhook.deleted", "webhook.changed", "webhook.created"]
    assert "whsec_" not in audit.text
