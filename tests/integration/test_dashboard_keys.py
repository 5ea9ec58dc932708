"""Manage → API Keys over HTTP: the same services as the REST API, forms and bad input."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from akener.keys.tokens import table_tail
from akener.runtime import Runtime
from tests.factories import bearer, make_key, make_user, sign_in

JSON = {"Accept": "application/json"}


async def _owner(client: httpx.AsyncClient, runtime: Runtime) -> str:
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    return await sign_in(client, "owner@example.com")


async def _api_keys(client: httpx.AsyncClient, runtime: Runtime) -> list[dict[str, str]]:
    _, admin = await make_key(runtime, "api-reader", scopes=["api_keys.read"])
    listed = await client.get("/api/v1/keys", headers=bearer(admin))
    assert listed.status_code == 200
    return [k for k in listed.json()["items"] if k["name"] != "api-reader"]


async def test_created_key_is_shown_once_and_listed_by_the_api(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await _owner(client, runtime)
    created = await client.post(
        "/manage/api-keys", data={"csrf_token": csrf, "name": "GitHub Actions"}
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    plaintext = re.search(r">(akener_[0-9a-f]{64})<", created.text)
    assert plaintext, "the new key is on the page"
    key = plaintext.group(1)
    assert "will not be shown again" in created.text
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    [listed] = await _api_keys(client, runtime)
    assert listed["name"] == "GitHub Actions" and listed["created_by"].startswith("user:")
    page = await client.get("/manage/api-keys")
    assert key not in page.text
    assert table_tail(listed["masked_key"]) in page.text
    assert listed["masked_key"].endswith(key[-4:])


async def test_key_created_by_the_api_shows_in_the_dashboard(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _owner(client, runtime)
    _, admin = await make_key(runtime, "admin")
    made = await client.post(
        "/api/v1/keys", json={"name": "Deploy Pipeline"}, headers=bearer(admin)
    )
    page = await client.get("/manage/api-keys")
    assert "Deploy Pipeline" in page.text
    assert table_tail(made.json()["masked_key"]) in page.text


async def test_json_create_returns_the_row_and_no_store(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await _owner(client, runtime)
    made = await client.post(
        "/manage/api-keys", data={"csrf_token": csrf, "name": "Monitoring Script"}, headers=JSON
    )
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    body = made.json()
    assert body["key"].startswith("akener_") and "Monitoring Script" in body["row_html"]
    assert body["key"] not in body["row_html"]


async def test_toggle_and_delete_with_post_redirect_get(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await _owner(client, runtime)
    row, key = await make_key(runtime, "worker", scopes=[])
    off = await client.post(
        f"/manage/api-keys/{row.id}/status", data={"csrf_token": csrf, "status": "INACTIVE"}
    )
    assert off.status_code == 303 and off.headers["location"] == "/manage/api-keys"
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 401
    page = await client.get("/manage/api-keys")
    assert "is now off (INACTIVE)" in page.text and 'aria-checked="false"' in page.text
    on = await client.post(
        f"/manage/api-keys/{row.id}/status",
        data={"csrf_token": csrf, "status": "ACTIVE"},
        headers=JSON,
    )
    assert on.json()["status"] == "ACTIVE"
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    confirm = await client.get(f"/manage/api-keys/{row.id}/delete")
    assert "cannot be" in confirm.text and "worker" in confirm.text
    gone = await client.post(f"/manage/api-keys/{row.id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 401
    assert await _api_keys(client, runtime) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name must not be empty."),
        ("     ", "Name must not be empty."),
        ("x" * 10_000, "Name must be at most 100 characters."),
    ],
    ids=["empty", "spaces", "10k"],
)
async def test_bad_names_get_a_message_and_create_nothing(
    client: httpx.AsyncClient, runtime: Runtime, name: str, message: str
) -> None:
    csrf = await _owner(client, runtime)
    response = await client.post("/manage/api-keys", data={"csrf_token": csrf, "name": name})
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert await _api_keys(client, runtime) == []


async def test_html_in_a_name_is_shown_as_text(client: httpx.AsyncClient, runtime: Runtime) -> None:
    csrf = await _owner(client, runtime)
    name = "<script>alert(1)</script>"
    await client.post("/manage/api-keys", data={"csrf_token": csrf, "name": name})
    page = await client.get("/manage/api-keys")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_taken_name_and_ungrantable_scope_are_refused_clearly(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ed@example.com", "editor")
    csrf = await sign_in(client, "ed@example.com")
    await make_key(runtime, "Taken")
    taken = await client.post("/manage/api-keys", data={"csrf_token": csrf, "name": "Taken"})
    assert taken.status_code == 409 and "already exists" in taken.text
    beyond = await client.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Deleter", "scope": "api_keys.delete"},
        headers=JSON,
    )
    assert beyond.status_code == 403
    assert "api_keys.delete" in beyond.json()["error"]["message"]
    assert [k["name"] for k in await _api_keys(client, runtime)] == ["Taken"]


async def test_editor_may_grant_held_scopes_and_operator_scopes_from_custom_roles(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from tests.factories import make_role

    await make_role(runtime, "Incidents", ["incidents.write"])
    await make_user(runtime, "ed@example.com", "editor", "Incidents")
    csrf = await sign_in(client, "ed@example.com")
    ok = await client.post(
        "/manage/api-keys",
        data={
            "csrf_token": csrf,
            "name": "Pager",
            "scope": ["api_keys.read", "incidents.write"],
        },
        headers=JSON,
    )
    assert ok.status_code == 201, ok.text
    refused = await client.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Other", "scope": "deploys.write"},
        headers=JSON,
    )
    assert refused.status_code == 403
    [key] = await _api_keys(client, runtime)
    assert key["scopes"] == ["api_keys.read", "incidents.write"]


async def test_admin_may_grant_any_operator_scope_but_not_unknown_akener_ones(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await _owner(client, runtime)
    ok = await client.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Deployer", "other_scopes": "deploys.write, x:y"},
        headers=JSON,
    )
    assert ok.status_code == 201, ok.text
    bad = await client.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Odd", "other_scopes": "api_keys.everything"},
        headers=JSON,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("Unknown scope api_keys.everything")
    typo = await client.post(
        "/manage/api-keys",
        data={"csrf_token": csrf, "name": "Typo", "other_scopes": "api_keys.reed"},
    )
    assert typo.status_code == 422
    assert "Unknown scope api_keys.reed; did you mean api_keys.read?" in unescape(typo.text)


async def test_pagination_newest_first(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await _owner(client, runtime)
    for i in range(23):
        await make_key(runtime, f"key-{i:02d}", scopes=[])
    first = await client.get("/manage/api-keys")
    names = re.findall(r">\s*(key-\d\d)\s*<", first.text)
    assert names[0] == "key-22" and len(names) == 20
    older = re.search(r'href="/manage/api-keys\?cursor=([^"]+)"', first.text)
    assert older
    second = await client.get(f"/manage/api-keys?cursor={older.group(1)}")
    assert re.findall(r">\s*(key-\d\d)\s*<", second.text) == ["key-02", "key-01", "key-00"]
    broken = await client.get("/manage/api-keys?cursor=nonsense!")
    assert broken.status_code == 422 and "invalid cursor" in broken.text.lower()


async def test_empty_state_says_how_to_create_the_first_key(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _owner(client, runtime)
    page = await client.get("/manage/api-keys")
    assert "No API keys yet" in page.text and "Create the first one" in page.text
