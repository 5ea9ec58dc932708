"""Expiry and rotation, with an injected clock so time can pass inside a test."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from akener.accounts.permissions import ALL_PERMISSIONS
from akener.app import AkenerApp
from akener.verify.cache import CachedKey
from tests.factories import FakeClock, bearer, make_key


async def test_an_expired_key_is_refused_at_the_instant_even_when_cached(
    timed: tuple[AkenerApp, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin")
    expires = clock.now + timedelta(hours=1)
    created = await client.post(
        "/api/v1/keys",
        json={"name": "temp", "expires_at": expires.isoformat()},
        headers=bearer(admin),
    )
    assert created.status_code == 201
    assert datetime.fromisoformat(created.json()["expires_at"]) == expires
    key = created.json()["key"]
    for _ in range(3):
        assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    cached = app.runtime.verifier.cached(key)
    assert isinstance(cached, CachedKey) and cached.active  # answered from memory from now on
    clock.advance(minutes=59, seconds=59)
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    clock.advance(seconds=1)
    refused = await client.get("/api/v1/whoami", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "invalid API key"
    assert (await client.get("/authz", headers=bearer(key))).status_code == 401
    assert app.runtime.verifier.cached(key) is cached  # still cached: the clock decided


async def test_expiry_can_be_changed_and_cleared(
    timed: tuple[AkenerApp, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin")
    row, key = await make_key(app.runtime, "worker", scopes=[])
    url = f"/api/v1/keys/{row.id}"
    soon = (clock.now + timedelta(minutes=5)).isoformat()
    assert (
        await client.patch(url, json={"expires_at": soon}, headers=bearer(admin))
    ).status_code == 200
    clock.advance(minutes=6)
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 401
    cleared = await client.patch(url, json={"expires_at": None}, headers=bearer(admin))
    assert cleared.status_code == 200 and cleared.json()["expires_at"] is None
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    audit = await client.get(
        "/api/v1/audit", params={"action": "key.expiry_changed"}, headers=bearer(admin)
    )
    assert len(audit.json()["items"]) == 2


@pytest.mark.parametrize(
    "expires_at",
    ["2000-01-01T00:00:00Z", "2026-11-29T10:00:00", "tomorrow", 1234, "now"],
)
async def test_bad_expiry_is_422_and_nothing_is_created(
    timed: tuple[AkenerApp, httpx.AsyncClient], expires_at: object
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin")
    answer = await client.post(
        "/api/v1/keys", json={"name": "bad", "expires_at": expires_at}, headers=bearer(admin)
    )
    assert answer.status_code == 422
    listed = await client.get("/api/v1/keys", params={"q": "bad"}, headers=bearer(admin))
    assert listed.json()["items"] == []


async def test_rotation_keeps_the_record_and_the_old_secret_for_the_grace_period(
    timed: tuple[AkenerApp, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin", scopes=[*ALL_PERMISSIONS, "deploy.run"])
    row, old = await make_key(app.runtime, "Deploy Pipeline", scopes=["deploy.run"])
    assert (await client.get("/api/v1/whoami", headers=bearer(old))).status_code == 200
    rotated = await client.post(
        f"/api/v1/keys/{row.id}/rotate", json={"grace_period_seconds": 3600}, headers=bearer(admin)
    )
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    new = body["key"]
    assert new != old and (body["id"], body["name"], body["scopes"]) == (
        row.id,
        "Deploy Pipeline",
        ["deploy.run"],
    )
    assert body["masked_key"].endswith(new[-4:])
    assert datetime.fromisoformat(body["previous_valid_until"]) == clock.now + timedelta(hours=1)
    for key in (old, new):
        me = await client.get("/api/v1/whoami", headers=bearer(key))
        assert me.status_code == 200 and me.json()["id"] == row.id
    again = await client.get(f"/api/v1/keys/{row.id}", headers=bearer(admin))
    assert "key" not in again.json()
    clock.advance(seconds=3599)
    assert (await client.get("/api/v1/whoami", headers=bearer(old))).status_code == 200
    clock.advance(seconds=1)
    assert (await client.get("/api/v1/whoami", headers=bearer(old))).status_code == 401
    assert (await client.get("/api/v1/whoami", headers=bearer(new))).status_code == 200


async def test_rotation_without_grace_refuses_the_old_secret_at_once(
    timed: tuple[AkenerApp, httpx.AsyncClient],
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin")
    row, old = await make_key(app.runtime, "leaked", scopes=[])
    assert (await client.get("/api/v1/whoami", headers=bearer(old))).status_code == 200
    rotated = await client.post(
        f"/api/v1/keys/{row.id}/rotate", json={"grace_period_seconds": 0}, headers=bearer(admin)
    )
    assert rotated.json()["previous_valid_until"] is None
    assert (await client.get("/api/v1/whoami", headers=bearer(old))).status_code == 401
    new = rotated.json()["key"]
    assert (await client.get("/api/v1/whoami", headers=bearer(new))).status_code == 200
    # a second rotation ends the first one's new secret too
    await client.post(
        f"/api/v1/keys/{row.id}/rotate", json={"grace_period_seconds": 0}, headers=bearer(admin)
    )
    assert (await client.get("/api/v1/whoami", headers=bearer(new))).status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"grace_period_seconds": 604801}, 422),
        ({"grace_period_seconds": -1}, 422),
        ({"grace_period_seconds": "60"}, 422),
        ({}, 422),
        ({"grace_period_seconds": 60, "extra": 1}, 422),
        ({"grace_period_seconds": 7200}, 422),  # beyond the key's expiry (1 hour)
    ],
)
async def test_bad_rotations_change_nothing(
    timed: tuple[AkenerApp, httpx.AsyncClient],
    clock: FakeClock,
    body: dict[str, object],
    status: int,
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin")
    expires = (clock.now + timedelta(hours=1)).isoformat()
    created = await client.post(
        "/api/v1/keys", json={"name": "k", "expires_at": expires}, headers=bearer(admin)
    )
    key_id, key = created.json()["id"], created.json()["key"]
    answer = await client.post(f"/api/v1/keys/{key_id}/rotate", json=body, headers=bearer(admin))
    assert answer.status_code == status, answer.text
    after = await client.get(f"/api/v1/keys/{key_id}", headers=bearer(admin))
    assert after.json()["masked_key"] == created.json()["masked_key"]
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200


async def test_inactive_deleted_or_expired_keys_cannot_be_rotated(
    timed: tuple[AkenerApp, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = timed
    _, admin = await make_key(app.runtime, "admin")
    body = {"grace_period_seconds": 0}
    off, _ = await make_key(app.runtime, "off", scopes=[])
    await client.patch(f"/api/v1/keys/{off.id}", json={"status": "INACTIVE"}, headers=bearer(admin))
    answer = await client.post(f"/api/v1/keys/{off.id}/rotate", json=body, headers=bearer(admin))
    assert answer.status_code == 409 and "inactive" in answer.json()["error"]["message"]
    gone, _ = await make_key(app.runtime, "gone", scopes=[])
    await client.delete(f"/api/v1/keys/{gone.id}", headers=bearer(admin))
    answer = await client.post(f"/api/v1/keys/{gone.id}/rotate", json=body, headers=bearer(admin))
    assert answer.status_code == 404
    created = await client.post(
        "/api/v1/keys",
        json={"name": "short", "expires_at": (clock.now + timedelta(minutes=1)).isoformat()},
        headers=bearer(admin),
    )
    clock.advance(minutes=2)
    answer = await client.post(
        f"/api/v1/keys/{created.json()['id']}/rotate", json=body, headers=bearer(admin)
    )
    assert answer.status_code == 409 and "expired" in answer.json()["error"]["message"]


async def test_verify_api_says_expired_for_expired_keys_and_spent_secrets(
    timed: tuple[AkenerApp, httpx.AsyncClient], clock: FakeClock
) -> None:
    app, client = timed
    _, checker = await make_key(app.runtime, "checker", scopes=["api_keys.verify"])
    _, admin = await make_key(app.runtime, "admin")
    expiring = await client.post(
        "/api/v1/keys",
        json={"name": "e", "expires_at": (clock.now + timedelta(minutes=1)).isoformat()},
        headers=bearer(admin),
    )
    row, old = await make_key(app.runtime, "rotated", scopes=[])
    await client.post(
        f"/api/v1/keys/{row.id}/rotate", json={"grace_period_seconds": 30}, headers=bearer(admin)
    )

    async def code(key: str) -> str:
        answer = await client.post(
            "/api/v1/keys/verify", json={"key": key, "scopes": []}, headers=bearer(checker)
        )
        assert answer.status_code == 200
        result: str = answer.json()["code"]
        return result

    assert await code(expiring.json()["key"]) == "VALID"
    assert await code(old) == "VALID"
    clock.advance(seconds=30)
    assert await code(old) == "EXPIRED"
    clock.advance(seconds=30)
    assert await code(expiring.json()["key"]) == "EXPIRED"
