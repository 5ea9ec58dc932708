"""Expiry, rotation, the key page and deactivate-first delete in the dashboard, over HTTP.

The app runs on a FakeClock so time can pass inside a test (dashboard sessions use real time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from tests.factories import (
    FakeClock,
    bearer,
    make_key,
    sign_in_owner,
)

JSON = {"Accept": "application/json"}
HOUR, DAY = 3600, 86400


async def load(rt: Runtime, key_id: str) -> ApiKey | None:
    async with rt.sessionmaker() as session:
        return await session.get(ApiKey, key_id)


async def by_name(rt: Runtime, name: str) -> ApiKey | None:
    async with rt.sessionmaker() as session:
        return await session.scalar(select(ApiKey).where(ApiKey.name == name))


async def set_expiry(rt: Runtime, expiries: dict[str, datetime]) -> None:
    """Set expiries straight in the database (the dashboard only reads them)."""
    async with rt.sessionmaker() as session:
        for key_id, when in expiries.items():
            await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=when))
        await session.commit()


async def whoami(web: httpx.AsyncClient, key: str) -> int:
    return (await web.get("/api/v1/whoami", headers=bearer(key))).status_code


# Expiry on create --------------------------------------------------------------------------


@pytest.mark.parametrize(("choice", "days"), [("never", None), ("7d", 7), ("30d", 30), ("90d", 90)])
async def test_create_with_each_expiry_preset(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock, choice: str, days: int | None
) -> None:
    csrf = await sign_in_owner(web, rt)
    made = await web.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Preset", "expires_in": choice, "expires_on": ""},
    )
    assert made.status_code == 200, made.text
    row = await by_name(rt, "Preset")
    assert row is not None
    assert row.expires_at == (clock.now + timedelta(days=days) if days else None)


async def test_create_with_a_custom_date_expires_at_midnight_utc_and_then_is_refused(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    csrf = await sign_in_owner(web, rt)
    day = (clock.now + timedelta(days=3)).date()
    made = await web.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Dated", "expires_in": "custom", "expires_on": str(day)},
        headers=JSON,
    )
    assert made.status_code == 201, made.text
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    row = await by_name(rt, "Dated")
    assert row is not None and row.expires_at == midnight
    key = made.json()["key"]
    assert await whoami(web, key) == 200
    clock.now = midnight - timedelta(seconds=1)
    assert await whoami(web, key) == 200
    clock.now = midnight
    assert await whoami(web, key) == 401


@pytest.mark.parametrize(
    ("choice", "date_text", "message", "field"),
    [
        ("custom", "today", "must be in the future", "expires_on"),
        ("custom", "2001-01-01", "must be in the future", "expires_on"),
        ("custom", "", "Pick the expiry date", "expires_on"),
        ("custom", "31/12/2030", "must be a date such as", "expires_on"),
        ("365", "", "Choose one of the expiry options", "expires_in"),
    ],
    ids=["today", "past", "missing", "malformed", "unknown-preset"],
)
async def test_bad_expiry_gets_a_clear_message_and_creates_nothing(
    web: httpx.AsyncClient,
    rt: Runtime,
    clock: FakeClock,
    choice: str,
    date_text: str,
    message: str,
    field: str,
) -> None:
    csrf = await sign_in_owner(web, rt)
    date_text = clock.now.date().isoformat() if date_text == "today" else date_text
    data = {"csrf_token": csrf, "name": "Nope", "expires_in": choice, "expires_on": date_text}
    page = await web.post("/manage/api-keys", data=data)
    assert page.status_code == 422
    assert message in page.text
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', page.text, re.S)
    assert 'value="Nope"' in page.text  # what was typed is kept
    fetched = await web.post("/manage/api-keys", data=data, headers=JSON)
    assert fetched.status_code == 422
    assert fetched.json()["error"]["field"] == field
    assert message in fetched.json()["error"]["message"]
    assert await by_name(rt, "Nope") is None


async def test_the_plain_create_page_has_the_expiry_select_and_date(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    await sign_in_owner(web, rt)
    page = await web.get("/manage/api-keys/new")
    assert '<select id="f-expires_in" name="expires_in"' in page.text
    for value in ("never", "7d", "30d", "90d", "custom"):
        assert f'<option value="{value}"' in page.text
    tomorrow = (clock.now + timedelta(days=1)).date().isoformat()
    assert re.search(rf'type="date"[^>]*min="{tomorrow}"', page.text)


# The keys table: Expired and the expiring-soon notice ---------------------------------------


async def test_expiring_notice_expired_state_and_toggle_follow_the_clock(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    csrf = await sign_in_owner(web, rt)
    soon, soon_key = await make_key(rt, "Soon", scopes=[])
    later, _ = await make_key(rt, "Later", scopes=[])
    off, _ = await make_key(rt, "Off soon", scopes=[])
    api = (await make_key(rt, "admin"))[1]
    for row, days in ((soon, 3), (later, 10), (off, 2)):
        expires = (clock.now + timedelta(days=days)).isoformat()
        patched = await web.patch(
            f"/api/v1/keys/{row.id}", json={"expires_at": expires}, headers=bearer(api)
        )
        assert patched.status_code == 200
    await web.post(
        f"/manage/api-keys/{off.id}/status", data={"csrf_token": csrf, "status": "INACTIVE"}
    )

    page = (await web.get("/manage/api-keys")).text
    assert "1 key expires in the next 7 days" in page  # the inactive one does not count
    notice = page.split('id="expiring-title"')[1].split("</section>")[0]
    assert f'href="/manage/api-keys/{soon.id}"' in notice and "in 3 days" in notice
    assert "Later" not in notice and "Off soon" not in notice
    assert re.search(rf'<tr id="key-{soon.id}" class="is-active is-expiring"', page)
    assert ">Expired</span>" not in page  # the state label (the filter offers "Expired" too)

    clock.advance(days=4)
    page = (await web.get("/manage/api-keys")).text
    assert "1 key expires in the next 7 days" in page
    notice = page.split('id="expiring-title"')[1].split("</section>")[0]
    assert "Later" in notice and "Soon" not in notice
    row_html = page.split(f'<tr id="key-{soon.id}"')[1].split("</tr>")[0]
    assert 'class="is-active is-expired"' in row_html
    assert ">Expired</span>" in row_html and 'aria-checked="true"' in row_html
    assert await whoami(web, soon_key) == 401

    # The switch of an expired key still switches it; the row keeps saying Expired.
    toggled = await web.post(
        f"/manage/api-keys/{soon.id}/status",
        data={"csrf_token": csrf, "status": "INACTIVE"},
        headers=JSON,
    )
    assert toggled.json()["status"] == "INACTIVE"
    row_html = (await web.get("/manage/api-keys")).text.split(f'<tr id="key-{soon.id}"')[1]
    row_html = row_html.split("</tr>")[0]
    assert 'class="is-inactive is-expired"' in row_html and ">Expired</span>" in row_html

    clock.advance(days=30)
    assert "in the next 7 days" not in (await web.get("/manage/api-keys")).text


async def test_notice_counts_all_but_names_at_most_ten(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    await sign_in_owner(web, rt)
    ids = [(await make_key(rt, f"batch {i:02}", scopes=[]))[0].id for i in range(12)]
    await set_expiry(
        rt, {key_id: clock.now + timedelta(hours=i + 1) for i, key_id in enumerate(ids)}
    )
    page = (await web.get("/manage/api-keys")).text
    assert "12 keys expire in the next 7 days" in page
    assert "and 2 more" in page
    notice = page.split('id="expiring-title"')[1].split("</section>")[0]
    assert "batch 00" in notice and "batch 09" in notice and "batch 10" not in notice
