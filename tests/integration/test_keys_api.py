"""The keys REST API end to end, on every database."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from akener.keys.models import KeyStatus
from akener.runtime import Runtime
from tests.factories import bearer, make_key


async def test_create_returns_plaintext_once_then_never(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    created = await client.post(
        "/api/v1/keys", json={"name": "GitHub Actions"}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("akener_") and len(body["key"]) == 71
    assert body["status"] == "ACTIVE"
    assert body["masked_key"].endswith(body["key"][-4:])
    assert "digest" not in body
    fetched = await client.get(f"/api/v1/keys/{body['id']}", headers=bearer(admin))
    assert fetched.status_code == 200
    assert "key" not in fetched.json()
    assert body["key"] not in fetched.text
    listed = await client.get("/api/v1/keys", headers=bearer(admin))
    assert body["key"] not in listed.text


async def test_deactivate_refuses_next_request_and_activate_restores(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    row, key = await make_key(runtime, "worker", scopes=["api_keys.read"])
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    off = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "INACTIVE"}, headers=bearer(admin)
    )
    assert off.status_code == 200 and off.json()["status"] == "INACTIVE"
    refused = await client.get("/api/v1/whoami", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    on = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "ACTIVE"}, headers=bearer(admin)
    )
    assert on.status_code == 200
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200


async def test_list_is_newest_first_paginated_filtered_and_searchable(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    names = [f"svc-{i}" for i in range(5)]
    for name in names:
        await make_key(runtime, name, scopes=[])
    inactive, _ = await make_key(runtime, "Monitoring Script", scopes=[], status=KeyStatus.INACTIVE)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/keys", params=params, headers=bearer(admin))).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Monitoring Script", *reversed(names), "admin"]

    off = await client.get("/api/v1/keys", params={"status": "INACTIVE"}, headers=bearer(admin))
    assert [i["id"] for i in off.json()["items"]] == [inactive.id]
    found = await client.get("/api/v1/keys", params={"q": "MONITOR"}, headers=bearer(admin))
    assert [i["name"] for i in found.json()["items"]] == ["Monitoring Script"]
    like = await client.get("/api/v1/keys", params={"q": "%"}, headers=bearer(admin))
    assert like.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"status": "ON"}, {"cursor": "!!"}],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, runtime: Runtime, params: dict[str, str]
) -> None:
    _, admin = await make_key(runtime, "admin")
    answer = await client.get("/api/v1/keys", params=params, headers=bearer(admin))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "x" * 10_000}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"name": "nul\x00"}, "name"),
        ({"name": 42}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "ok", "scopes": "api_keys.read"}, "scopes"),
        ({"name": "ok", "scopes": ["has space"]}, "scopes"),
        ({"name": "ok", "extra": 1}, "extra"),
        ({"name": "ok", "status": "INACTIVE"}, "status"),
    ],
)
async def test_create_rejects_invalid_bodies_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, body: dict[str, object], field: str
) -> None:
    _, admin = await make_key(runtime, "admin")
    answer = await client.post("/api/v1/keys", json=body, headers=bearer(admin))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert any(f["field"].startswith(field) for f in error["fields"]), error
    listed = await client.get("/api/v1/keys", headers=bearer(admin))
    assert [i["name"] for i in listed.json()["items"]] == ["admin"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"name": "\xff\xfe"}', b"[]", b"null", b'"GitHub"'],
)
async def test_create_rejects_broken_json(
    client: httpx.AsyncClient, runtime: Runtime, content: bytes
) -> None:
    _, admin = await make_key(runtime, "admin")
    answer = await client.post(
        "/api/v1/keys",
        content=content,
        headers=bearer(admin) | {"Content-Type": "application/json"},
    )
    # A body that cannot be parsed (not JSON, not UTF-8): 400; parsable but wrong JSON: 422.
    expected = 400 if b"\xff" in content or content == b"{not json" else 422
    assert answer.status_code == expected
    assert answer.json()["error"]["code"] in {"BAD_REQUEST", "VALIDATION_ERROR"}
    assert answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "name",
    ["Déploiement 🚀 生产", "Robert'); DROP TABLE api_keys;--", "<script>alert(1)</script>", "a"],
)
async def test_names_are_stored_and_shown_exactly(
    client: httpx.AsyncClient, runtime: Runtime, name: str
) -> None:
    _, admin = await make_key(runtime, "admin")
    created = await client.post("/api/v1/keys", json={"name": f"  {name} "}, headers=bearer(admin))
    assert created.status_code == 201
    assert created.json()["name"] == name
    listed = await client.get("/api/v1/keys", headers=bearer(admin))
    assert name in [i["name"] for i in listed.json()["items"]]


async def test_a_taken_name_is_a_conflict(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin")
    other, _ = await make_key(runtime, "Deploy Pipeline", scopes=[])
    again = await client.post(
        "/api/v1/keys", json={"name": "Deploy Pipeline"}, headers=bearer(admin)
    )
    assert again.status_code == 409
    assert "Deploy Pipeline" in again.json()["error"]["message"]
    renamed = await client.patch(
        f"/api/v1/keys/{other.id}", json={"name": "admin"}, headers=bearer(admin)
    )
    assert renamed.status_code == 409
    still = await client.get(f"/api/v1/keys/{other.id}", headers=bearer(admin))
    assert still.json()["name"] == "Deploy Pipeline"


async def test_concurrent_creates_with_one_name_give_one_201_and_one_409(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/v1/keys", json={"name": "Uptime Robot Webhook"}, headers=bearer(admin)
            )
            for _ in range(2)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409]


async def test_patch_renames_and_validates(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin")
    row, _ = await make_key(runtime, "old name", scopes=[])
    url = f"/api/v1/keys/{row.id}"
    renamed = await client.patch(url, json={"name": " new name "}, headers=bearer(admin))
    assert renamed.status_code == 200 and renamed.json()["name"] == "new name"
    for body in (
        {},
        {"status": "active"},
        {"status": None, "name": None},
        {"scopes": ["api_keys.reed"]},
    ):
        answer = await client.patch(url, json=body, headers=bearer(admin))
        assert answer.status_code == 422, body
    after = (await client.get(url, headers=bearer(admin))).json()
    assert after["name"] == "new name" and after["status"] == "ACTIVE"


async def test_delete_is_permanent(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin")
    row, key = await make_key(runtime, "doomed", scopes=["api_keys.read"])
    gone = await client.delete(f"/api/v1/keys/{row.id}", headers=bearer(admin))
    assert gone.status_code == 204 and gone.content == b""
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 401
    assert (await client.get(f"/api/v1/keys/{row.id}", headers=bearer(admin))).status_code == 404
    assert (await client.delete(f"/api/v1/keys/{row.id}", headers=bearer(admin))).status_code == 404
    patch = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "ACTIVE"}, headers=bearer(admin)
    )
    assert patch.status_code == 404


@pytest.mark.parametrize("key_id", ["nope", "x" * 500, "%00", "1 OR 1=1"])
async def test_unknown_ids_are_404_json(
    client: httpx.AsyncClient, runtime: Runtime, key_id: str
) -> None:
    _, admin = await make_key(runtime, "admin")
    answer = await client.get(f"/api/v1/keys/{key_id}", headers=bearer(admin))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


async def test_whoami_describes_the_calling_key(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    row, key = await make_key(runtime, "GitHub Actions", scopes=["incidents.write"])
    me = await client.get("/api/v1/whoami", headers=bearer(key))
    assert me.status_code == 200
    assert me.json()["id"] == row.id
    assert me.json()["scopes"] == ["incidents.write"]


async def test_a_key_grants_only_scopes_it_holds(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, writer = await make_key(runtime, "writer", scopes=["api_keys.write", "incidents.read"])
    ok = await client.post(
        "/api/v1/keys",
        json={"name": "child", "scopes": ["incidents.read"]},
        headers=bearer(writer),
    )
    assert ok.status_code == 201
    assert ok.json()["created_by"].startswith("key:")
    for scopes in (["api_keys.delete"], ["incidents.write"], ["api_keys.write", "api_keys.read"]):
        refused = await client.post(
            "/api/v1/keys", json={"name": f"x{scopes}", "scopes": scopes}, headers=bearer(writer)
        )
        assert refused.status_code == 403, scopes
        assert refused.json()["error"]["code"] == "FORBIDDEN"


async def test_body_too_large_is_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin")
    big = {"name": "x", "scopes": ["a" * 90] * 1000}
    answer = await client.post("/api/v1/keys", json=big, headers=bearer(admin))
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_openapi_documents_every_error_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert (await client.get("/docs")).status_code == 200
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "401" in codes, (method, path)
            for code in codes - {"200", "201", "204"}:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith(("/ErrorBody", "/HTTPValidationError")), (
                    method,
                    path,
                    code,
                )


async def test_control_characters_in_the_name_search_are_a_clear_422(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    for q in ("a\x00", "\x1b[31m"):
        answer = await client.get("/api/v1/keys", params={"q": q}, headers=bearer(admin))
        assert answer.status_code == 422, answer.text  # PostgreSQL would fail on the NUL
        assert "control characters" in answer.json()["error"]["message"]


async def test_answers_carrying_a_plaintext_key_are_never_stored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    created = await client.post("/api/v1/keys", json={"name": "cached?"}, headers=bearer(admin))
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    key_id = created.json()["id"]
    rotated = await client.post(
        f"/api/v1/keys/{key_id}/rotate", json={"grace_period_seconds": 0}, headers=bearer(admin)
    )
    assert rotated.status_code == 200 and rotated.json()["key"].startswith("akener_")
    assert rotated.headers["cache-control"] == "no-store"
