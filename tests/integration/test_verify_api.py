"""POST /api/v1/keys/verify on every database."""

from __future__ import annotations

import httpx
import pytest

from akener.keys.models import KeyStatus
from akener.runtime import Runtime
from tests.factories import bearer, make_key

URL = "/api/v1/keys/verify"


@pytest.fixture
async def caller(runtime: Runtime) -> dict[str, str]:
    _, key = await make_key(runtime, "gateway", scopes=["api_keys.verify"])
    return bearer(key)


async def test_needs_a_key_with_api_keys_verify(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, plain = await make_key(runtime, "plain", scopes=["api_keys.read"])
    assert (await client.post(URL, json={"key": plain})).status_code == 401
    refused = await client.post(URL, json={"key": plain}, headers=bearer(plain))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"


async def test_every_code(
    client: httpx.AsyncClient, runtime: Runtime, caller: dict[str, str]
) -> None:
    row, key = await make_key(runtime, "svc", scopes=["incidents.read"])
    _, off = await make_key(runtime, "off", scopes=[], status=KeyStatus.INACTIVE)
    cases = [
        ({"key": key}, True, "VALID"),
        ({"key": key, "scopes": ["incidents.read"]}, True, "VALID"),
        ({"key": key, "scopes": ["incidents.write"]}, False, "INSUFFICIENT_SCOPE"),
        ({"key": off}, False, "INACTIVE"),
        ({"key": "akener_" + "f" * 64}, False, "NOT_FOUND"),
        ({"key": "akener_" + "F" * 64}, False, "MALFORMED"),
        ({"key": ""}, False, "MALFORMED"),
        ({"key": "x" * 4000}, False, "MALFORMED"),
    ]
    for body, valid, code in cases:
        answer = await client.post(URL, json=body, headers=caller)
        assert answer.status_code == 200, (body, answer.text)
        data = answer.json()
        assert (data["valid"], data["code"]) == (valid, code), body
        if code in ("VALID", "INSUFFICIENT_SCOPE"):
            assert data["key"] == {
                "id": row.id,
                "name": "svc",
                "scopes": ["incidents.read"],
                "owner_id": None,
                "expires_at": None,
                "limited": False,
            }
        if code in ("NOT_FOUND", "MALFORMED"):
            assert data["key"] is None
        assert key not in answer.text


async def test_bad_body_is_422(client: httpx.AsyncClient, caller: dict[str, str]) -> None:
    for body in ({}, {"key": 5}, {"key": "k", "scopes": "a"}, {"key": "k", "extra": 1}):
        answer = await client.post(URL, json=body, headers=caller)
        assert answer.status_code == 422, body


async def test_deactivation_shows_at_once(
    client: httpx.AsyncClient, runtime: Runtime, caller: dict[str, str]
) -> None:
    _, admin = await make_key(runtime, "admin")
    row, key = await make_key(runtime, "svc", scopes=[])
    assert (await client.post(URL, json={"key": key}, headers=caller)).json()["valid"]
    await client.patch(f"/api/v1/keys/{row.id}", json={"status": "INACTIVE"}, headers=bearer(admin))
    answer = await client.post(URL, json={"key": key}, headers=caller)
    assert answer.json()["code"] == "INACTIVE"


async def test_the_key_carries_owner_expiry_and_whether_it_is_limited(
    client: httpx.AsyncClient, runtime: Runtime, caller: dict[str, str]
) -> None:
    _, admin = await make_key(runtime, "admin")
    made = await client.post(
        "/api/v1/keys",
        json={"name": "owned", "owner_id": "customer_42", "expires_at": "2099-01-02T03:04:05Z"},
        headers=bearer(admin),
    )
    assert made.status_code == 201, made.text
    owned = made.json()["key"]
    data = (await client.post(URL, json={"key": owned}, headers=caller)).json()
    assert data["code"] == "VALID"
    assert data["key"]["owner_id"] == "customer_42"
    assert data["key"]["expires_at"] == "2099-01-02T03:04:05Z"
    assert data["key"]["limited"] is False  # an owner id alone limits nothing

    for limit in (
        {"rate_limits": [{"name": "m", "limit": 100, "period_seconds": 60}]},
        {"credits": {"remaining": 5}},
        {"allowed_ips": ["10.0.0.0/8"]},
    ):
        body = {"name": f"limited {sorted(limit)}", **limit}
        key = (await client.post("/api/v1/keys", json=body, headers=bearer(admin))).json()["key"]
        answer = (await client.post(URL, json={"key": key}, headers=caller)).json()
        assert answer["key"]["limited"] is True, limit
        assert answer["key"]["owner_id"] is None


async def test_an_owners_shared_limits_make_its_keys_limited(
    client: httpx.AsyncClient, runtime: Runtime, caller: dict[str, str]
) -> None:
    _, admin = await make_key(runtime, "admin")
    shared = {"rate_limits": [{"name": "m", "limit": 100, "period_seconds": 60}]}
    put = await client.put("/api/v1/owners/acme", json=shared, headers=bearer(admin))
    assert put.status_code == 200, put.text
    body = {"name": "acme key", "owner_id": "acme"}
    key = (await client.post("/api/v1/keys", json=body, headers=bearer(admin))).json()["key"]
    data = (await client.post(URL, json={"key": key}, headers=caller)).json()
    assert (data["key"]["owner_id"], data["key"]["limited"]) == ("acme", True)


async def test_an_old_secret_shows_the_end_of_its_grace_period(
    client: httpx.AsyncClient, runtime: Runtime, caller: dict[str, str]
) -> None:
    _, admin = await make_key(runtime, "admin")
    row, old = await make_key(runtime, "rotated", scopes=[])
    rotated = await client.post(
        f"/api/v1/keys/{row.id}/rotate", json={"grace_period_seconds": 3600}, headers=bearer(admin)
    )
    assert rotated.status_code == 200, rotated.text
    until = rotated.json()["previous_valid_until"]
    new = rotated.json()["key"]
    old_answer = (await client.post(URL, json={"key": old}, headers=caller)).json()
    assert old_answer["code"] == "VALID"
    assert old_answer["key"]["expires_at"] == until
    new_answer = (await client.post(URL, json={"key": new}, headers=caller)).json()
    assert new_answer["key"]["expires_at"] is None
