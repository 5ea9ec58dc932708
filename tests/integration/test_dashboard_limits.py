"""The key page's Limits card: shown, edited, validated, and governed by the grant rule."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import httpx

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.verify.models import KeyUsage
from tests.factories import FakeClock, make_key, make_role, make_user, sign_in, sign_in_owner


async def load(rt: Runtime, key_id: str) -> ApiKey:
    async with rt.sessionmaker() as session:
        row = await session.get(ApiKey, key_id)
    assert row is not None
    return row


FORM = {
    "owner_id": "customer_42",
    "rate_limits": "requests 100/60\nday 5000/86400",
    "credits": "1000",
    "refill_amount": "1000",
    "refill_interval": "monthly",
    "allowed_ips": "10.0.0.0/8\n2001:db8::/32",
}


async def test_the_key_page_edits_and_shows_limits(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    csrf = await sign_in_owner(web, rt)
    key, _ = await make_key(rt, "limited", scopes=["billing.read"])
    saved = await web.post(f"/manage/api-keys/{key.id}/limits", data={"csrf_token": csrf, **FORM})
    assert saved.status_code == 303
    row = await load(rt, key.id)
    assert row.owner_id == "customer_42" and row.credits_remaining == 1000
    assert row.rate_limits == [
        {"name": "requests", "limit": 100, "period_seconds": 60},
        {"name": "day", "limit": 5000, "period_seconds": 86400},
    ]
    assert row.allowed_ips == ["10.0.0.0/8", "2001:db8::/32"]
    page = html.unescape((await web.get(f"/manage/api-keys/{key.id}")).text)
    assert "customer_42" in page and "requests: 100 per 60 s" in page
    assert "1,000 remaining" in page and "2027-01-01" in page
    assert "2001:db8::/32" in page
    bad = await web.post(
        f"/manage/api-keys/{key.id}/limits",
        data={"csrf_token": csrf, **FORM, "allowed_ips": "10.0.0.1/8"},
    )
    assert bad.status_code == 422 and "CIDR" in html.unescape(bad.text)
    assert 'value="customer_42"' in bad.text  # the form keeps what was typed
    assert (await load(rt, key.id)).allowed_ips == ["10.0.0.0/8", "2001:db8::/32"]


async def test_a_user_lacking_the_keys_scopes_can_tighten_but_not_loosen(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    await make_role(rt, "writers", ["api_keys.read", "api_keys.write"])
    await make_user(rt, "w@example.com", "writers")
    csrf = await sign_in(web, "w@example.com")
    key, _ = await make_key(rt, "target", scopes=["billing.read"])
    url = f"/manage/api-keys/{key.id}/limits"
    same_owner = {**FORM, "owner_id": ""}  # a new owner would be a grant too
    tighter = await web.post(url, data={"csrf_token": csrf, **same_owner})
    assert tighter.status_code == 303
    looser = await web.post(url, data={"csrf_token": csrf, **same_owner, "credits": "2000"})
    assert looser.status_code == 403 and "billing.read" in html.unescape(looser.text)
    assert (await load(rt, key.id)).credits_remaining == 1000


async def test_the_owners_page_lists_keys_shared_limits_and_traffic(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    csrf = await sign_in_owner(web, rt)
    key, _ = await make_key(rt, "acme prod")
    await web.post(
        f"/manage/api-keys/{key.id}/limits",
        data={"csrf_token": csrf, **FORM, "owner_id": "acme"},
    )
    _, admin = await make_key(rt, "admin")
    shared = {"rate_limits": [{"name": "acme", "limit": 500, "period_seconds": 60}]}
    await web.put("/api/v1/owners/acme", json=shared, headers={"Authorization": f"Bearer {admin}"})
    async with rt.sessionmaker() as session:
        session.add(KeyUsage(key_id=key.id, day=clock.now.date(), count=1234))
        session.add(KeyUsage(key_id=key.id, day=clock.now.date() - timedelta(days=45), count=9))
        await session.commit()
    page = html.unescape((await web.get("/manage/owners")).text)
    assert "acme" in page and "acme prod" in page
    assert "acme: 500 per 60 s" in page and "1,234" in page and "1,243" not in page


async def test_the_create_form_sets_limits(web: httpx.AsyncClient, rt: Runtime) -> None:
    csrf = await sign_in_owner(web, rt)
    made = await web.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "limited from the form", **FORM},
        headers={"Accept": "application/json"},
    )
    assert made.status_code == 201, made.text
    row = await load(rt, made.json()["id"])
    assert row.owner_id == "customer_42" and row.credits_refill_interval == "monthly"
    assert [w["name"] for w in row.rate_limits] == ["requests", "day"]
    bad = await web.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "bad limits", **FORM, "rate_limits": "requests 0/60"},
    )
    assert bad.status_code == 422 and "limit must be between" in html.unescape(bad.text).lower()
    assert "requests 0/60" in bad.text  # what was typed stays in the form
