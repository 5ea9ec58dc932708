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
            assert data["key"] == {"id": row.id, "name": "svc", "scopes": ["incidents.read"]}
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
