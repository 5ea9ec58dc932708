"""The key page: details, usage chart, history, rotation; and the deactivate-first delete page."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import httpx
import pytest

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.verify.models import KeyUsage
from tests.factories import (
    SECRET_RE,
    FakeClock,
    bearer,
    make_key,
    make_role,
    make_user,
    sign_in,
    sign_in_owner,
)

HOUR, DAY = 3600, 86400


async def load(rt: Runtime, key_id: str) -> ApiKey:
    async with rt.sessionmaker() as session:
        row = await session.get(ApiKey, key_id)
    assert row is not None
    return row


async def whoami(web: httpx.AsyncClient, key: str) -> int:
    return (await web.get("/api/v1/whoami", headers=bearer(key))).status_code


async def add_usage(rt: Runtime, key_id: str, counts: dict[date, int]) -> None:
    async with rt.sessionmaker() as session:
        session.add_all(KeyUsage(key_id=key_id, day=d, count=n) for d, n in counts.items())
        await session.commit()


async def rotate_token(web: httpx.AsyncClient, key_id: str) -> str:
    """The one-time token of the rotate form on the key page, as a browser would send it."""
    page = (await web.get(f"/manage/api-keys/{key_id}")).text
    found = re.search(r'name="rotate_token" value="([0-9a-f]{64})"', page)
    assert found, "no rotate token on the key page"
    return found.group(1)


def section(page: str, title_id: str) -> str:
    return page.split(f'id="{title_id}"')[1].split("</section>")[0]


# The page -----------------------------------------------------------------------------------


async def test_key_page_shows_details_usage_and_history(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    csrf = await sign_in_owner(web, rt)
    made = await web.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Deploy <Pipeline>", "scope": "api_keys.read"},
        headers={"Accept": "application/json"},
    )
    key_id = made.json()["id"]
    row = await load(rt, key_id)
    await web.post(
        f"/manage/api-keys/{key_id}/status", data={"csrf_token": csrf, "status": "INACTIVE"}
    )
    other, _ = await make_key(rt, "other", scopes=[])
    today = clock.now.date()
    await add_usage(
        rt,
        key_id,
        {
            today: 5,
            today - timedelta(days=1): 7,
            today - timedelta(days=29): 1000,
            today - timedelta(days=30): 99_999,
        },
    )
    await add_usage(rt, other.id, {today: 123_456})

    list_page = await web.get("/manage/api-keys")
    assert f'<a href="/manage/api-keys/{key_id}">Deploy &lt;Pipeline&gt;</a>' in list_page.text

    page = await web.get(f"/manage/api-keys/{key_id}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Deploy &lt;Pipeline&gt;" in text and "<Pipeline>" not in text
    details = section(text, "details-title")
    assert row.masked_key in details
    assert '<span class="badge badge-inactive">Inactive</span>' in details
    assert "api_keys.read" in details
    assert "by <span" in details and "owner@example.com" in details  # creator's email
    assert "Never rotated." in details
    assert details.count("Never") >= 2  # last used, expires

    usage = section(text, "usage-title")
    assert usage.count('<rect class="bar') == 30
    assert usage.count('class="bar bar-zero"') == 27
    assert f"{today.isoformat()}: 5 requests" in usage
    assert f"{(today - timedelta(days=29)).isoformat()}: 1,000 requests" in usage
    assert "1,012 requests in the last 30 days" in usage
    assert "99,999" not in usage and "123,456" not in usage  # out of range, other key

    history = section(text, "history-title")
    assert history.index("Key deactivated") < history.index("Key created")
    assert "owner@example.com" in history
    assert 'ACTIVE</span> → <span class="after">INACTIVE' in history


async def test_without_audit_read_there_is_no_history_and_unknown_ids_are_404(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    await make_role(rt, "Viewer", ["api_keys.read"])
    await make_user(rt, "viewer@example.com", "Viewer")
    await sign_in(web, "viewer@example.com")
    row, _ = await make_key(rt, "watched", scopes=[])
    page = await web.get(f"/manage/api-keys/{row.id}")
    assert page.status_code == 200
    assert 'id="history-title"' not in page.text and "Key created" not in page.text
    assert "Audit log" not in page.text  # not in the navigation either
    assert re.search(r'<button type="submit" class="primary" disabled[^>]*>Rotate key', page.text)
    for missing in ("0" * 32, "not-an-id", "%00"):
        gone = await web.get(f"/manage/api-keys/{missing}")
        assert gone.status_code == 404, missing
        assert "No API key with that id" in gone.text


# Rotation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("grace", [0, HOUR, DAY, 7 * DAY], ids=["now", "1h", "24h", "7d"])
async def test_rotate_with_each_grace_period(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock, grace: int
) -> None:
    csrf = await sign_in_owner(web, rt)
    row, old = await make_key(rt, "Rotating", scopes=[])
    assert await whoami(web, old) == 200  # cached wherever a cache exists
    token = await rotate_token(web, row.id)
    answer = await web.post(
        f"/manage/api-keys/{row.id}/rotate",
        data={"csrf_token": csrf, "grace_period_seconds": str(grace), "rotate_token": token},
    )
    assert answer.status_code == 200  # shown in this answer, never redirected
    assert answer.headers["cache-control"] == "no-store"
    assert "location" not in answer.headers
    found = SECRET_RE.findall(answer.text)
    assert len(found) == 1
    new = found[0]
    assert new != old and "It will not be shown again" in answer.text
    assert new not in str(answer.url)
    assert "set-cookie" not in answer.headers or new not in answer.headers["set-cookie"]
    assert await whoami(web, new) == 200

    rotated = await load(rt, row.id)
    assert rotated.masked_key.endswith(new[-4:]) and rotated.rotated_at == clock.now
    page = (await web.get(f"/manage/api-keys/{row.id}")).text
    assert new not in page and old not in page
    if grace == 0:
        assert "stopped working immediately" in answer.text
        assert await whoami(web, old) == 401
        assert "previous secret is still valid" not in page
        return
    until = clock.now + timedelta(seconds=grace)
    assert rotated.previous_valid_until == until
    assert f"keeps working until {until:%Y-%m-%d %H:%M} UTC" in answer.text
    assert "The previous secret is still valid until" in page
    assert f"{until:%Y-%m-%d %H:%M} UTC" in section(page, "details-title")
    clock.now = until - timedelta(seconds=1)
    assert await whoami(web, old) == 200
    clock.now = until
    assert await whoami(web, old) == 401
    assert await whoami(web, new) == 200
    assert (
        "previous secret is still valid" not in (await web.get(f"/manage/api-keys/{row.id}")).text
    )


async def _rotate_refused(
    web: httpx.AsyncClient, rt: Runtime, csrf: str, row: ApiKey, grace: str, status: int
) -> str:
    before = await load(rt, row.id)
    token = await rotate_token(web, row.id)
    answer = await web.post(
        f"/manage/api-keys/{row.id}/rotate",
        data={"csrf_token": csrf, "grace_period_seconds": grace, "rotate_token": token},
    )
    assert answer.status_code == status, answer.text
    assert not SECRET_RE.search(answer.text)
    after = await load(rt, row.id)
    assert (after.digest, after.masked_key, after.rotated_at, after.previous_valid_until) == (
        before.digest,
        before.masked_key,
        before.rotated_at,
        before.previous_valid_until,
    )
    return html.unescape(section(answer.text, "rotate-title"))


async def test_rotation_errors_are_clear_and_change_nothing(
    web: httpx.AsyncClient, rt: Runtime, clock: FakeClock
) -> None:
    csrf = await sign_in_owner(web, rt)
    _, api = await make_key(rt, "admin")
    inactive, _ = await make_key(rt, "Paused", scopes=[])
    await web.patch(f"/api/v1/keys/{inactive.id}", json={"status": "INACTIVE"}, headers=bearer(api))
    message = await _rotate_refused(web, rt, csrf, inactive, "3600", 409)
    assert "An inactive key cannot be rotated; activate it first" in message

    short, short_key = await make_key(rt, "Short-lived", scopes=[])
    expires = clock.now + timedelta(hours=2)
    await web.patch(
        f"/api/v1/keys/{short.id}", json={"expires_at": expires.isoformat()}, headers=bearer(api)
    )
    page = (await web.get(f"/manage/api-keys/{short.id}")).text
    assert re.search(r'<option value="86400" disabled>24 hours \(past the key', page)
    assert re.search(r'<option value="3600">1 hour</option>', page)
    message = await _rotate_refused(web, rt, csrf, short, str(DAY), 422)
    assert "The grace period would outlast the key's expiry" in message
    assert "choose a shorter one" in message
    assert await whoami(web, short_key) == 200

    for bogus in ("5", "", "3600; DROP TABLE api_keys", "-1"):
        message = await _rotate_refused(web, rt, csrf, short, bogus, 422)
        assert "Choose one of the grace periods offered." in message

    clock.advance(hours=3)
    message = await _rotate_refused(web, rt, csrf, short, "0", 409)
    assert "An expired key cannot be rotated" in message


async def test_rotate_needs_write_and_the_button_says_so(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    await make_user(rt, "member@example.com", "member")
    csrf = await sign_in(web, "member@example.com")
    row, key = await make_key(rt, "Guarded", scopes=[])
    page = (await web.get(f"/manage/api-keys/{row.id}")).text
    assert re.search(r'disabled title="Needs the api_keys.write permission">Rotate key', page)
    refused = await web.post(
        f"/manage/api-keys/{row.id}/rotate", data={"csrf_token": csrf, "grace_period_seconds": "0"}
    )
    assert refused.status_code == 403 and "api_keys.write" in refused.text
    assert (await load(rt, row.id)).masked_key == row.masked_key
    assert await whoami(web, key) == 200


# Deactivate first ---------------------------------------------------------------------------


async def test_delete_page_of_an_active_key_offers_deactivate_instead(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    csrf = await sign_in_owner(web, rt)
    row, key = await make_key(rt, "Suspicious", scopes=[])
    page = (await web.get(f"/manage/api-keys/{row.id}/delete")).text
    assert "Not sure? Deactivate it instead." in page
    form = page.split(f'action="/manage/api-keys/{row.id}/status"')[1].split("</form>")[0]
    assert 'name="status" value="INACTIVE"' in form and ">Deactivate instead</button>" in form
    instead = await web.post(
        f"/manage/api-keys/{row.id}/status",
        data={"csrf_token": csrf, "status": "INACTIVE", "return_to": "/manage/api-keys"},
    )
    assert instead.status_code == 303 and instead.headers["location"] == "/manage/api-keys"
    assert await whoami(web, key) == 401
    assert (await load(rt, row.id)).status == "INACTIVE"  # kept, only switched off
    page = (await web.get(f"/manage/api-keys/{row.id}/delete")).text
    assert "Deactivate instead" not in page and "already switched off" in page


async def test_deactivate_instead_is_disabled_without_write(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    await make_user(rt, "member@example.com", "member")
    await sign_in(web, "member@example.com")
    row, _ = await make_key(rt, "Watched", scopes=[])
    page = (await web.get(f"/manage/api-keys/{row.id}/delete")).text
    assert re.search(
        r'<button type="submit" disabled title="Needs the api_keys.write permission">'
        r"Deactivate instead</button>",
        page,
    )
    listing = (await web.get("/manage/api-keys")).text
    dialog = listing.split('id="delete-dialog"')[1]
    assert re.search(r"disabled[^>]*>Deactivate instead", dialog)
