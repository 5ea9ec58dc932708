"""The keys REST API end to end, on every database."""

from __future__ import annotations

import httpx

from akener.runtime import Runtime
from tests.factories import bearer, make_key


async def test_create_returns_plaintext_once_then_never(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    created = await client.post(
        "/api/v1/keys", json={"name": "GitHub Actions"}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("akener_") and len(body["key"]) == 71
    assert body["status"] == "ACTIVE"
    assert body["masked_key"].endswith(body["key"][-4:])
    assert "digest" not in body
    fetched = await client.get(f"/api/v1/keys/{body['id']}", headers=bearer(admin))
    assert fetched.status_code == 200
    assert "key" not in fetched.json()
    assert body["key"] not in fetched.text
    listed = await client.get("/api/v1/keys", headers=bearer(admin))
    assert body["key"] not in listed.text


async def test_deactivate_refuses_next_request_and_activate_restores(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    row, key = await make_key(runtime, "worker", scopes=["api_keys.read"])
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    off = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "INACTIVE"}, headers=bearer(admin)
    )
    assert off.status_code == 200 and off.json()["status"] == "INACTIVE"
    refused = await client.get("/api/v1/whoami", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    on = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "ACTIVE"}, headers=bearer(admin)
    )
    assert on.status_code == 200
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
