"""Limits on the hot path, one process: /authz, the verify API and akener's own /api/v1.

Time is a FakeClock (tests/integration/conftest.py): windows roll over and credits refill
when the test moves it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from akener.app import AkenerApp
from akener.runtime import Runtime
from tests.factories import FakeClock, bearer, make_key

# 50 s into a minute, 10 s before a new month and a new year.
EVE = datetime(2026, 12, 31, 23, 59, 50, tzinfo=UTC)


async def limited_key(web: httpx.AsyncClient, rt: Runtime, **limits: Any) -> tuple[str, str]:
    _, admin = await make_key(rt, "admin")
    made = await web.post(
        "/api/v1/keys", json={"name": "limited", "scopes": ["api_keys.read"], **limits},
        headers=bearer(admin),
    )  # fmt: skip
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


async def authz(web: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await web.get("/authz", headers={**bearer(key), **headers})


async def test_a_window_admits_exactly_its_limit_and_tells_when_to_retry(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    clock.now = EVE
    window = {"name": "requests", "limit": 3, "period_seconds": 60}
    _, key = await limited_key(web, rt, rate_limits=[window])
    for remaining in (2, 1, 0):
        ok = await authz(web, key)
        assert ok.status_code == 200
        assert ok.headers["ratelimit-policy"] == '"requests";q=3;w=60'
        assert ok.headers["ratelimit"] == f'"requests";r={remaining};t=10'
        assert ok.headers["x-akener-credits-remaining"] == ""
        assert ok.headers["x-akener-owner-id"] == ""
    refused = await authz(web, key)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "10"
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert refused.headers["ratelimit"] == '"requests";r=0;t=10'
    assert refused.headers["x-akener-key-id"] == ""
    clock.advance(seconds=9)
    assert (await authz(web, key)).headers["retry-after"] == "1"
    clock.advance(seconds=1)  # the next window starts
    assert (await authz(web, key)).status_code == 200


async def test_credits_run_out_and_refill_on_the_first_of_the_month(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    clock.now = EVE
    credits = {"remaining": 2, "refill": {"amount": 5, "interval": "monthly"}}
    _key_id, key = await limited_key(web, rt, credits=credits, owner_id="customer_42")
    seen = []
    for _ in range(2):
        ok = await authz(web, key)
        assert ok.status_code == 200
        assert ok.headers["x-akener-owner-id"] == "customer_42"
        seen.append(ok.headers["x-akener-credits-remaining"])
    assert seen == ["1", "0"]
    refused = await authz(web, key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "USAGE_EXCEEDED"
    assert refused.headers["retry-after"] == "10"
    assert refused.headers["x-akener-credits-remaining"] == ""
    clock.advance(seconds=10)  # 2027-01-01T00:00:00Z: set back to 5, then one spent
    ok = await authz(web, key)
    assert ok.status_code == 200 and ok.headers["x-akener-credits-remaining"] == "4"


async def test_credits_without_refill_have_no_retry_after(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    _, key = await limited_key(web, rt, credits={"remaining": 0})
    refused = await authz(web, key)
    assert refused.status_code == 429 and "retry-after" not in refused.headers


async def test_an_owner_window_is_shared_by_all_its_keys(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    clock.now = EVE
    _, admin = await make_key(rt, "admin")
    keys = []
    for name in ("one", "two"):
        made = await web.post(
            "/api/v1/keys", json={"name": name, "owner_id": "acme"}, headers=bearer(admin)
        )
        keys.append(made.json()["key"])
    shared = {"rate_limits": [{"name": "acme", "limit": 3, "period_seconds": 60}]}
    assert (await web.put("/api/v1/owners/acme", json=shared, headers=bearer(admin))).is_success
    codes = [(await authz(web, keys[i % 2])).status_code for i in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]


async def test_the_allowlist_refuses_other_addresses(web: httpx.AsyncClient, rt: Runtime) -> None:
    _, key = await limited_key(web, rt, allowed_ips=["10.0.0.0/8", "::1/128"])
    refused = await authz(web, key)  # the test client is 127.0.0.1
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "IP_NOT_ALLOWED"
    assert refused.headers["x-akener-key-id"] == "" and refused.headers["x-akener-owner-id"] == ""


async def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    clocked_app: AkenerApp, rt: Runtime, web: httpx.AsyncClient
) -> None:
    _, key = await limited_key(web, rt, allowed_ips=["10.0.0.0/8"])
    forwarded = {"X-Forwarded-For": "10.1.2.3"}
    # Loopback is a trusted proxy by default: its X-Forwarded-For names the client.
    assert (await authz(web, key, **forwarded)).status_code == 200
    # The same header sent straight from an untrusted address is ignored.
    transport = httpx.ASGITransport(app=clocked_app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as direct:
        forged = await direct.get("/authz", headers={**bearer(key), **forwarded})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "IP_NOT_ALLOWED"


async def test_the_verify_api_reports_limits_and_counts_the_checked_key(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    clock.now = EVE
    _, checker = await make_key(rt, "checker", scopes=["api_keys.verify"])
    window = {"name": "requests", "limit": 1, "period_seconds": 60}
    _, key = await limited_key(
        web, rt, rate_limits=[window], credits={"remaining": 10}, allowed_ips=["192.0.2.0/24"]
    )

    async def ask(**body: Any) -> httpx.Response:
        return await web.post(
            "/api/v1/keys/verify", json={"key": key, **body}, headers=bearer(checker)
        )

    assert (await ask(ip="198.51.100.1")).json()["code"] == "IP_NOT_ALLOWED"
    first = await ask(ip="192.0.2.7", cost=4)
    assert first.status_code == 200 and first.json()["code"] == "VALID"
    assert first.json()["limits"]["windows"] == [
        {"name": "requests", "limit": 1, "remaining": 0, "reset_seconds": 10}
    ]
    assert first.json()["limits"]["credits"] == {"remaining": 6, "refill_at": None}
    second = await ask(ip="192.0.2.7")
    assert second.status_code == 200, "the checked key is limited, not the caller"
    assert second.json()["code"] == "RATE_LIMITED" and second.json()["valid"] is False
    clock.advance(seconds=10)
    assert (await ask(ip="192.0.2.7", cost=7)).json()["code"] == "USAGE_EXCEEDED"
    for bad in ({"cost": 1001}, {"cost": -1}, {"cost": "1"}, {"ip": "10.0.0.1\x00"}, {"ip": "x"}):
        assert (await ask(**bad)).status_code == 422, bad


async def test_akeners_own_api_obeys_the_calling_keys_limits(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    clock.now = EVE
    window = {"name": "api", "limit": 2, "period_seconds": 60}
    _, key = await limited_key(web, rt, rate_limits=[window])
    codes = [(await web.get("/api/v1/whoami", headers=bearer(key))).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = await web.get("/api/v1/whoami", headers=bearer(key))
    assert refused.headers["retry-after"] == "10"
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    _, poor = await limited_key_named(web, rt, "poor", credits={"remaining": 0})
    answer = await web.get("/api/v1/whoami", headers=bearer(poor))
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "USAGE_EXCEEDED"


async def limited_key_named(
    web: httpx.AsyncClient, rt: Runtime, name: str, **limits: Any
) -> tuple[str, str]:
    _, admin = await make_key(rt, f"admin-{name}")
    made = await web.post("/api/v1/keys", json={"name": name, **limits}, headers=bearer(admin))
    return made.json()["id"], made.json()["key"]


async def test_concurrent_requests_never_overspend_credits(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    _, key = await limited_key(web, rt, credits={"remaining": 10})
    answers = await asyncio.gather(*(authz(web, key) for _ in range(40)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 10 + [429] * 30
    left = sorted(a.headers["x-akener-credits-remaining"] for a in answers if a.is_success)
    assert left == sorted(str(n) for n in range(10))
