"""The keys list with many keys: search, filters, every sort, keyset pages (API and dashboard)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from tests.factories import bearer, make_key, sign_in_owner

SORTS = ["-created", "created", "name", "-name", "-last_used", "last_used"]


async def _set(runtime: Runtime, key_id: str, **values: object) -> None:
    async with runtime.sessionmaker() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        await session.commit()


async def _seed(runtime: Runtime) -> dict[str, ApiKey]:
    """Eleven keys: ties in last use, never used, expired, expiring, never expiring, scopes."""
    now = datetime.now(UTC)
    made: dict[str, ApiKey] = {}
    for n, name in enumerate(
        "kilo alpha juliet bravo india charlie hotel delta golf echo foxtrot".split()  # noqa: SIM905
    ):
        row, _ = await make_key(runtime, name, scopes=["deploys.write"] if n % 3 == 0 else [])
        made[name] = row
        await _set(runtime, row.id, created_at=now - timedelta(hours=50 - n))
        if n % 4 != 0:  # kilo, india, echo: never used; the rest tie in pairs
            await _set(runtime, row.id, last_used_at=now - timedelta(hours=n // 2))
    await _set(runtime, made["alpha"].id, expires_at=now - timedelta(days=1))
    await _set(runtime, made["bravo"].id, expires_at=now + timedelta(days=3))
    await _set(runtime, made["charlie"].id, expires_at=now + timedelta(days=30))
    await _set(runtime, made["delta"].id, status="INACTIVE")
    return made


def _expected(rows: list[ApiKey], sort: str) -> list[str]:
    column = sort.lstrip("-")
    descending = sort.startswith("-")
    if column == "name":
        return sorted((r.name for r in rows), reverse=descending)
    if column == "created":
        ordered = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=descending)
        return [r.name for r in ordered]
    used = [r for r in rows if r.last_used_at is not None]
    never = [r for r in rows if r.last_used_at is None]
    ordered = sorted(used, key=lambda r: (r.last_used_at, r.id), reverse=descending)
    return [r.name for r in ordered] + [
        r.name for r in sorted(never, key=lambda r: r.id, reverse=descending)
    ]


async def _walk(client: httpx.AsyncClient, token: str, **params: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **params} | ({"cursor": cursor} if cursor else {})
        answer = await client.get("/api/v1/keys", params=query, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        seen += [item["name"] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.parametrize("sort", SORTS)
async def test_every_sort_pages_through_every_key_once_in_order(
    client: httpx.AsyncClient, runtime: Runtime, sort: str
) -> None:
    made = await _seed(runtime)
    admin_row, admin = await make_key(runtime, "zulu-admin")
    async with runtime.sessionmaker() as session:
        rows = [await session.get(ApiKey, k.id) for k in [*made.values(), admin_row]]
    expected = _expected([r for r in rows if r is not None], sort)
    # The admin key is used by this very walk, so it may move: compare without it.
    walked = [n for n in await _walk(client, admin, sort=sort) if n != "zulu-admin"]
    assert walked == [n for n in expected if n != "zulu-admin"]


async def test_filters_by_expiry_scope_status_and_name(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _seed(runtime)
    _, admin = await make_key(runtime, "zulu-admin")

    async def names(**params: str) -> list[str]:
        return sorted(await _walk(client, admin, **params))

    assert await names(expiry="expired") == ["alpha"]
    assert await names(expiry="expiring") == ["bravo"]
    assert "alpha" not in await names(expiry="never") and "kilo" in await names(expiry="never")
    assert await names(scope="deploys.write") == ["bravo", "echo", "hotel", "kilo"]
    assert await names(scope="deploys") == []  # a whole scope, not a part of one
    assert await names(status="INACTIVE") == ["delta"]
    assert await names(status="INACTIVE", scope="deploys.write") == []
    assert await names(status="ACTIVE", scope="deploys.write", expiry="expiring") == ["bravo"]
    assert await names(q="LI", sort="name") == ["charlie", "juliet"]
    for bad in (
        {"expiry": "soon"},
        {"sort": "digest"},
        {"scope": 'a"b'},
        {"sort": "name", "cursor": "x"},
    ):
        answer = await client.get("/api/v1/keys", params=bad, headers=bearer(admin))
        assert answer.status_code == 422, bad


async def test_dashboard_list_searches_filters_sorts_and_pages_with_them(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await sign_in_owner(client, runtime)
    made = await _seed(runtime)
    for n in range(25):
        await make_key(runtime, f"bulk-{n:02d}", scopes=[])
    page = await client.get("/manage/api-keys", params={"sort": "name", "q": "bulk"})
    assert "25 keys match" in page.text
    rows = re.findall(r'<th scope="row" class="key-name"[^>]*>\s*<a [^>]*>([^<]+)</a>', page.text)
    assert rows == [f"bulk-{n:02d}" for n in range(20)]
    found = re.search(r'<a href="([^"]+)">Next page →</a>', page.text)
    assert found
    second = await client.get(html.unescape(found.group(1)))
    rows = re.findall(r'<th scope="row" class="key-name"[^>]*>\s*<a [^>]*>([^<]+)</a>', second.text)
    assert rows == [f"bulk-{n:02d}" for n in range(20, 25)]

    expiring = await client.get("/manage/api-keys", params={"expiry": "expiring"})
    assert (
        made["bravo"].id in expiring.text
        and made["alpha"].id not in expiring.text.split("keys-table")[1]
    )
    bad = await client.get("/manage/api-keys", params={"sort": "digest"})
    assert bad.status_code == 422 and "Sort must be one of" in bad.text


ROW_NAME = re.compile(r'<th scope="row" class="key-name"[^>]*>\s*<a [^>]*>([^<]+)</a>')


async def test_dashboard_owner_filter_combines_with_the_others_and_pages_keep_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await sign_in_owner(client, runtime)
    for n in range(23):
        row, _ = await make_key(runtime, f"acme-{n:02d}", scopes=[])
        await _set(runtime, row.id, owner_id="acme.corp", status="INACTIVE" if n % 2 else "ACTIVE")
    for n in range(3):
        row, _ = await make_key(runtime, f"other-{n}", scopes=[])
        await _set(runtime, row.id, owner_id="acme.corp-2")  # a longer id that starts alike
    await make_key(runtime, "acme-no-owner", scopes=[])

    page = await client.get("/manage/api-keys", params={"owner_id": "acme.corp", "sort": "name"})
    assert "23 keys match" in page.text
    assert 'name="owner_id" type="text" value="acme.corp"' in page.text
    assert ROW_NAME.findall(page.text) == [f"acme-{n:02d}" for n in range(20)]
    found = re.search(r'<a href="([^"]+)">Next page →</a>', page.text)
    assert found and "owner_id=acme.corp" in html.unescape(found.group(1))
    second = await client.get(html.unescape(found.group(1)))
    assert ROW_NAME.findall(second.text) == ["acme-20", "acme-21", "acme-22"]

    both = await client.get(
        "/manage/api-keys", params={"owner_id": "acme.corp", "status": "INACTIVE", "q": "-1"}
    )
    assert ROW_NAME.findall(both.text) == ["acme-19", "acme-17", "acme-15", "acme-13", "acme-11"]
    assert "5 keys match" in both.text
    none = await client.get("/manage/api-keys", params={"owner_id": "nobody"})
    assert none.status_code == 200 and ROW_NAME.findall(none.text) == []
    for hostile in ("acme%", "acme corp", "a" * 129, "x'; DROP TABLE api_keys; --"):
        refused = await client.get("/manage/api-keys", params={"owner_id": hostile})
        assert refused.status_code == 422 and ROW_NAME.findall(refused.text) == []
        assert "Owner_id must be 1 to 128" in html.unescape(refused.text)

    owners = await client.get("/manage/owners")
    assert 'href="/manage/api-keys?owner_id=acme.corp"' in owners.text
