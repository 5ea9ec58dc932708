"""Refused requests counted per key, day and reason by the batched usage flush (issue 10).

Every way the verifier refuses a known key is counted: at /authz, on akener's own API and
through the verify API; nothing is written per request, and a failed flush loses nothing.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.db.engine import make_engine, make_sessionmaker
from akener.keys import service
from akener.keys.models import KeyStatus
from akener.runtime import Runtime
from akener.verify.models import KeyRefusal, KeyUsage
from tests.factories import bearer, make_key
from tests.helpers import count_statements
from tests.integration.test_limits_enforced import authz
from tests.servers import free_port


async def limited_key(web: httpx.AsyncClient, rt: Runtime, **limits: Any) -> tuple[str, str]:
    """A key with ``limits`` (and only api_keys.read), made through the API."""
    _, admin = await make_key(rt, f"admin-{secrets.token_hex(4)}")
    made = await web.post(
        "/api/v1/keys",
        json={"name": f"limited-{secrets.token_hex(4)}", "scopes": ["api_keys.read"], **limits},
        headers=bearer(admin),
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


async def _refusals(rt: Runtime) -> dict[tuple[str, str], int]:
    async with rt.sessionmaker() as session:
        rows = (await session.execute(select(KeyRefusal))).scalars().all()
    today = datetime.now(UTC).date()
    assert all(r.day == today for r in rows)
    return {(r.key_id, r.reason): r.count for r in rows}


async def _accepted(rt: Runtime) -> dict[str, int]:
    async with rt.sessionmaker() as session:
        rows = (await session.execute(select(KeyUsage))).scalars().all()
    return {r.key_id: r.count for r in rows}


async def test_every_refusal_of_a_known_key_is_counted_by_reason_in_one_flush(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    window = {"name": "requests", "limit": 2, "period_seconds": 86_400}
    limited_id, limited = await limited_key(web, rt, rate_limits=[window])
    walled_id, walled = await limited_key(web, rt, allowed_ips=["203.0.113.0/24"])
    broke_id, broke = await limited_key(web, rt, credits={"remaining": 1})
    off_row, off = await make_key(rt, "off", scopes=["a"])
    narrow_row, narrow = await make_key(rt, "narrow", scopes=["a"])
    await rt.usage.flush()
    await rt.verifier.refusals.flush()  # type: ignore[union-attr]
    base = await _accepted(rt)
    patched = await web.patch(
        f"/api/v1/keys/{off_row.id}", json={"status": "INACTIVE"}, headers=bearer(limited)
    )
    assert patched.status_code == 403  # the limited key lacks api_keys.write: it is counted
    with count_statements(rt.engine) as statements:
        codes = [(await authz(web, limited)).status_code for _ in range(5)]
        codes += [(await authz(web, walled)).status_code for _ in range(3)]
        codes += [(await authz(web, narrow, **{"X-Akener-Required-Scope": "b"})).status_code]
    assert codes == [200, 429, 429, 429, 429, 403, 403, 403, 403]
    assert not [s for s in statements.statements if "INSERT" in s or "UPDATE" in s]
    codes = [(await authz(web, broke)).status_code for _ in range(4)]
    assert codes == [200, 429, 429, 429]
    async with rt.sessionmaker() as session:
        await service.set_key_status(session, CLI_PRINCIPAL, off_row.id, KeyStatus.INACTIVE)
        await session.commit()
    assert (await authz(web, off)).status_code == 401
    assert (await authz(web, off)).status_code == 401
    assert await _refusals(rt) == {}  # nothing written before the flush
    await rt.usage.flush()
    counted = await _refusals(rt)
    assert counted == {
        (limited_id, "RATE_LIMITED"): 4,  # the PATCH took one of the 2
        (walled_id, "IP_NOT_ALLOWED"): 3,
        (narrow_row.id, "INSUFFICIENT_SCOPE"): 1,
        (broke_id, "USAGE_EXCEEDED"): 3,
        (off_row.id, "INACTIVE"): 2,
    }
    accepted = await _accepted(rt)
    # The PATCH refused for lack of permission was an accepted request of the limited key.
    assert accepted[limited_id] - base.get(limited_id, 0) == 2
    assert accepted.get(walled_id, 0) == base.get(walled_id, 0)
    assert accepted[broke_id] - base.get(broke_id, 0) == 1


async def test_the_verify_api_counts_refusals_once_and_acceptances_only_when_accepted(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    _, caller = await make_key(rt, "verifier")
    window = {"name": "requests", "limit": 1, "period_seconds": 86_400}
    checked_id, checked = await limited_key(web, rt, rate_limits=[window])
    await rt.usage.flush()
    before = (await _accepted(rt)).get(checked_id, 0)
    answers = []
    for scopes in ([], [], ["nope"]):
        got = await web.post(
            "/api/v1/keys/verify", json={"key": checked, "scopes": scopes}, headers=bearer(caller)
        )
        assert got.status_code == 200, got.text
        answers.append(got.json()["code"])
    assert answers == ["VALID", "RATE_LIMITED", "INSUFFICIENT_SCOPE"]
    await rt.usage.flush()
    assert (await _accepted(rt))[checked_id] - before == 1
    refused = await _refusals(rt)
    assert refused[(checked_id, "RATE_LIMITED")] == 1
    assert refused[(checked_id, "INSUFFICIENT_SCOPE")] == 1


async def test_refusal_counts_survive_failed_flushes(web: httpx.AsyncClient, rt: Runtime) -> None:
    window = {"name": "requests", "limit": 1, "period_seconds": 86_400}
    key_id, key = await limited_key(web, rt, rate_limits=[window])
    usage = rt.usage
    working = usage._sessionmaker
    gone = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    usage._sessionmaker = make_sessionmaker(gone)
    try:
        assert (await authz(web, key)).status_code == 200
        for round_ in range(3):
            for _ in range(2):
                assert (await authz(web, key)).status_code == 429
            assert await usage.flush() is False
            assert usage.pending >= 2 * (round_ + 1)
    finally:
        usage._sessionmaker = working
        await gone.dispose()
    assert await usage.flush() is True
    assert usage.pending == 0
    assert (await _refusals(rt))[(key_id, "RATE_LIMITED")] == 6
