"""GET /api/v1/owners: every owner id with keys or shared limits, paged by cursor."""

from __future__ import annotations

import base64

import httpx

from akener.runtime import Runtime
from tests.factories import bearer, make_key


async def test_owners_are_listed_by_id_in_pages_with_counts_and_shared_limits(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    auth = bearer(admin)
    for n, owner in enumerate(["c-2", "c-1", "c-2", "c-3", "c-5"]):
        made = await client.post(
            "/api/v1/keys", json={"name": f"k{n}", "owner_id": owner}, headers=auth
        )
        assert made.status_code == 201, made.text
    shared = {"rate_limits": [], "credits": {"remaining": 7}}
    assert (await client.put("/api/v1/owners/c-4", json=shared, headers=auth)).status_code == 200
    seen: list[dict[str, object]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/owners", params=params, headers=auth)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [o["owner_id"] for o in seen] == ["c-1", "c-2", "c-3", "c-4", "c-5"]
    assert [o["key_count"] for o in seen] == [1, 2, 1, 0, 1]
    assert seen[3]["credits"]["remaining"] == 7  # type: ignore[index]
    assert seen[0]["credits"] is None and seen[0]["rate_limits"] == []


async def test_owners_list_needs_read_and_refuses_forged_cursors(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, reader = await make_key(runtime, "reader", scopes=["api_keys.read"])
    _, nobody = await make_key(runtime, "nobody", scopes=[])
    assert (await client.get("/api/v1/owners")).status_code == 401
    assert (await client.get("/api/v1/owners", headers=bearer(nobody))).status_code == 403
    empty = await client.get("/api/v1/owners", headers=bearer(reader))
    assert empty.status_code == 200 and empty.json() == {"items": [], "next_cursor": None}
    forged = [
        "%%%",
        base64.urlsafe_b64encode(b"a\x00b").decode(),
        base64.urlsafe_b64encode(b"has space").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "",
    ]
    for cursor in forged:
        answer = await client.get(
            "/api/v1/owners", params={"cursor": cursor}, headers=bearer(reader)
        )
        assert answer.status_code == 422, (cursor, answer.text)
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"
    for limit in ("0", "101", "x"):
        answer = await client.get("/api/v1/owners", params={"limit": limit}, headers=bearer(reader))
        assert answer.status_code == 422
