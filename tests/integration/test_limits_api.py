"""Limits on keys and owners through the API: storage, validation, and the grant rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from akener.accounts.permissions import ALL_PERMISSIONS
from akener.audit.models import AuditEvent
from akener.keys.models import ApiKey
from akener.runtime import Runtime
from tests.factories import bearer, make_key

LIMITS: dict[str, Any] = {
    "owner_id": "customer_42",
    "rate_limits": [
        {"name": "requests", "limit": 100, "period_seconds": 60},
        {"name": "daily", "limit": 5000, "period_seconds": 86400},
    ],
    "credits": {"remaining": 1000, "refill": {"amount": 1000, "interval": "monthly"}},
    "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
}
WRITER = ["api_keys.read", "api_keys.write"]
ADMIN = [*ALL_PERMISSIONS, "billing.read"]


async def create(client: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/keys", json=body, headers=bearer(key))


async def test_limits_are_stored_shown_and_cleared(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    made = await create(client, admin, name="limited", **LIMITS)
    assert made.status_code == 201, made.text
    shown = made.json()
    assert shown["owner_id"] == "customer_42"
    assert shown["rate_limits"] == LIMITS["rate_limits"]
    assert shown["allowed_ips"] == LIMITS["allowed_ips"]
    assert shown["credits"]["remaining"] == 1000
    assert shown["credits"]["refill"] == {"amount": 1000, "interval": "monthly"}
    refill_at = datetime.fromisoformat(shown["credits"]["refill_at"])
    assert refill_at.day == 1 and refill_at.hour == 0 and refill_at > datetime.now(UTC)
    url = f"/api/v1/keys/{shown['id']}"
    got = (await client.get(url, headers=bearer(admin))).json()
    assert got["rate_limits"] == LIMITS["rate_limits"] and got["credits"]["remaining"] == 1000
    cleared = await client.patch(
        url,
        json={"owner_id": None, "rate_limits": None, "credits": None, "allowed_ips": None},
        headers=bearer(admin),
    )
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert body["owner_id"] is None and body["rate_limits"] == [] and body["credits"] is None
    assert body["allowed_ips"] == []
    async with runtime.sessionmaker() as session:
        stmt = select(AuditEvent.action).where(AuditEvent.target_id == shown["id"])
        actions = list((await session.execute(stmt)).scalars())
    assert "key.limits_changed" in actions


async def test_list_filters_by_owner_id(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    for name, owner in (("a", "customer_1"), ("b", "customer_2"), ("c", "customer_1")):
        assert (await create(client, admin, name=name, owner_id=owner)).status_code == 201
    page = await client.get("/api/v1/keys?owner_id=customer_1", headers=bearer(admin))
    assert sorted(k["name"] for k in page.json()["items"]) == ["a", "c"]
    bad = await client.get("/api/v1/keys?owner_id=a%00b", headers=bearer(admin))
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"rate_limits": [{"name": "r", "limit": 0, "period_seconds": 60}]}, "limit"),
        ({"rate_limits": [{"name": "r", "limit": 1, "period_seconds": 86401}]}, "period"),
        ({"rate_limits": [{"name": "r", "limit": 10**30, "period_seconds": 1}]}, "limit"),
        ({"rate_limits": [{"name": "r", "limit": "5", "period_seconds": 1}]}, "limit"),
        (
            {"rate_limits": [{"name": f"w{i}", "limit": 1, "period_seconds": 1} for i in range(6)]},
            "5",
        ),
        ({"rate_limits": [{"name": "r", "limit": 1, "period_seconds": 1}] * 2}, "name"),
        ({"rate_limits": [{"name": "a\x00b", "limit": 1, "period_seconds": 1}]}, "name"),
        ({"credits": {"remaining": -1}}, "remaining"),
        ({"credits": {"remaining": 10**20}}, "remaining"),
        ({"credits": {"remaining": 1, "refill": {"amount": 1, "interval": "weekly"}}}, "interval"),
        ({"allowed_ips": ["10.0.0.1/8"]}, "CIDR"),
        ({"allowed_ips": ["10.0.0.0/8\x00"]}, "CIDR"),
        ({"allowed_ips": ["example.com"]}, "CIDR"),
        ({"owner_id": "has space"}, "owner_id"),
        ({"owner_id": "x" * 129}, "owner_id"),
        ({"owner_id": "a\x00"}, "owner_id"),
    ],
)
async def test_bad_limits_are_a_clear_422_and_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime, body: dict[str, Any], words: str
) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    answer = await create(client, admin, name="bad", **body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "VALIDATION_ERROR"
    assert words.lower() in answer.text.lower()
    async with runtime.sessionmaker() as session:
        names = list((await session.execute(select(ApiKey.name))).scalars())
    assert names == ["admin"]


async def test_a_bare_address_is_a_single_host_block(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    made = await create(client, admin, name="one", allowed_ips=["192.0.2.7", "2001:DB8::1"])
    assert made.json()["allowed_ips"] == ["192.0.2.7/32", "2001:db8::1/128"]


async def test_loosening_limits_is_a_grant_tightening_is_not(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    _, writer = await make_key(runtime, "writer", scopes=WRITER)
    made = await create(client, admin, name="target", scopes=["billing.read"], **LIMITS)
    url = f"/api/v1/keys/{made.json()['id']}"
    tighter: list[dict[str, Any]] = [
        {
            "rate_limits": [
                {"name": "requests", "limit": 10, "period_seconds": 3600},
                LIMITS["rate_limits"][1],
            ]
        },
        {"credits": {"remaining": 10, "refill": {"amount": 500, "interval": "monthly"}}},
        {"allowed_ips": ["10.1.0.0/16"]},
    ]
    for body in tighter:
        answer = await client.patch(url, json=body, headers=bearer(writer))
        assert answer.status_code == 200, (body, answer.text)
    looser: list[dict[str, Any]] = [
        {"rate_limits": [{"name": "requests", "limit": 1000, "period_seconds": 3600}]},
        {"rate_limits": None},
        {"credits": {"remaining": 11, "refill": {"amount": 500, "interval": "monthly"}}},
        {"credits": {"remaining": 10, "refill": {"amount": 500, "interval": "daily"}}},
        {"credits": None},
        {"allowed_ips": ["10.0.0.0/8"]},
        {"allowed_ips": []},
        {"owner_id": "customer_43"},
        {"owner_id": None},
    ]
    for body in looser:
        answer = await client.patch(url, json=body, headers=bearer(writer))
        assert answer.status_code == 403, (body, answer.text)
        assert "billing.read" in answer.json()["error"]["message"]
    got = (await client.get(url, headers=bearer(admin))).json()
    assert got["credits"]["remaining"] == 10 and got["allowed_ips"] == ["10.1.0.0/16"]
    assert got["owner_id"] == "customer_42"
    # Someone holding every scope of the key may loosen it.
    wide = await client.patch(url, json={"credits": None, "owner_id": None}, headers=bearer(admin))
    assert wide.status_code == 200 and wide.json()["credits"] is None


async def test_a_key_cannot_loosen_its_own_limits(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    made = await create(client, admin, name="self", scopes=WRITER, credits={"remaining": 5})
    own = made.json()["key"]
    url = f"/api/v1/keys/{made.json()['id']}"
    more = await client.patch(url, json={"credits": {"remaining": 50}}, headers=bearer(own))
    assert more.status_code == 403 and "its own limits" in more.text
    less = await client.patch(url, json={"credits": {"remaining": 1}}, headers=bearer(own))
    assert less.status_code == 200, less.text


async def test_a_limited_key_creates_only_keys_at_least_as_limited_under_its_owner(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    # The test client calls from 127.0.0.1: the parent must be usable from there.
    own = {**LIMITS, "allowed_ips": [*LIMITS["allowed_ips"], "127.0.0.0/8"]}
    parent = await create(client, admin, name="parent", scopes=WRITER, **own)
    limited = parent.json()["key"]
    refused: list[dict[str, Any]] = [
        {},
        {**LIMITS, "owner_id": "customer_43"},
        {**LIMITS, "owner_id": None},
        {**LIMITS, "rate_limits": [LIMITS["rate_limits"][0]]},
        {**LIMITS, "credits": None},
        {**LIMITS, "credits": {"remaining": 1001}},
        {**LIMITS, "allowed_ips": []},
        {**LIMITS, "allowed_ips": ["11.0.0.0/8"]},
    ]
    for i, body in enumerate(refused):
        answer = await create(client, limited, name=f"child{i}", **body)
        assert answer.status_code == 403, (body, answer.text)
        assert "at least as limited" in answer.json()["error"]["message"]
    child = {
        **LIMITS,
        "credits": {"remaining": 10},
        "allowed_ips": ["10.2.0.0/16"],
        "rate_limits": [*LIMITS["rate_limits"], {"name": "burst", "limit": 5, "period_seconds": 1}],
    }
    ok = await create(client, limited, name="child", **child)
    assert ok.status_code == 201, ok.text
    # Nor can it shape an existing unlimited key into one less limited than itself.
    plain = await create(client, admin, name="plain", scopes=["api_keys.read"])
    url = f"/api/v1/keys/{plain.json()['id']}"
    answer = await client.patch(url, json={"owner_id": "customer_42"}, headers=bearer(limited))
    assert answer.status_code == 403


async def test_owner_shared_limits(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin", scopes=ADMIN)
    _, writer = await make_key(runtime, "writer", scopes=WRITER)
    missing = await client.get("/api/v1/owners/customer_42", headers=bearer(admin))
    assert missing.status_code == 404
    await create(client, admin, name="k1", owner_id="customer_42", scopes=["billing.read"])
    empty = await client.get("/api/v1/owners/customer_42", headers=bearer(admin))
    assert empty.status_code == 200
    assert empty.json() == {
        "owner_id": "customer_42",
        "rate_limits": [],
        "credits": None,
        "key_count": 1,
    }
    shared = {"rate_limits": LIMITS["rate_limits"], "credits": {"remaining": 100}}
    put = await client.put("/api/v1/owners/customer_42", json=shared, headers=bearer(writer))
    assert put.status_code == 200, put.text
    assert put.json()["credits"]["remaining"] == 100 and put.json()["key_count"] == 1
    more = await client.put(
        "/api/v1/owners/customer_42", json={"credits": {"remaining": 200}}, headers=bearer(writer)
    )
    assert more.status_code == 403 and "billing.read" in more.text
    ok = await client.put(
        "/api/v1/owners/customer_42", json={"credits": {"remaining": 200}}, headers=bearer(admin)
    )
    assert ok.status_code == 200 and ok.json()["rate_limits"] == []
    bad = await client.put("/api/v1/owners/bad%20id", json={"credits": None}, headers=bearer(admin))
    assert bad.status_code == 422
    reader = (await make_key(runtime, "reader", scopes=["api_keys.read"]))[1]
    denied = await client.put("/api/v1/owners/x", json={}, headers=bearer(reader))
    assert denied.status_code == 403
    assert (await client.get("/api/v1/owners/x")).status_code == 401
