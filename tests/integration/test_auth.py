"""Default-deny Bearer authentication: every route, every spelling, every refusal."""

from __future__ import annotations

import re

import httpx
import pytest

from akener.accounts.permissions import ALL_PERMISSIONS
from akener.app import build_api
from akener.runtime import Runtime
from akener.verify.bearer import MISSING_MESSAGE, REJECTED_MESSAGE
from tests.factories import bearer, make_key

# The permission each route needs (None: any valid key); a new route must be added here.
NEEDS = {
    ("GET", "/api/v1/keys"): "api_keys.read",
    ("POST", "/api/v1/keys"): "api_keys.write",
    ("GET", "/api/v1/keys/{key_id}"): "api_keys.read",
    ("PATCH", "/api/v1/keys/{key_id}"): "api_keys.write",
    ("DELETE", "/api/v1/keys/{key_id}"): "api_keys.delete",
    ("GET", "/api/v1/whoami"): None,
    ("GET", "/api/v1/audit"): "audit.read",
    ("POST", "/api/v1/keys/{key_id}/rotate"): "api_keys.write",
    ("POST", "/api/v1/keys/verify"): "api_keys.verify",
    ("GET", "/api/v1/keys/changes"): "api_keys.verify",
    ("GET", "/api/v1/owners"): "api_keys.read",
    ("GET", "/api/v1/owners/{owner_id}"): "api_keys.read",
    ("PUT", "/api/v1/owners/{owner_id}"): "api_keys.write",
    ("POST", "/api/v1/keys/{key_id}/leaked"): "api_keys.write",
    ("GET", "/api/v1/webhooks"): "webhooks.read",
    ("POST", "/api/v1/webhooks"): "webhooks.write",
    ("GET", "/api/v1/webhooks/{webhook_id}"): "webhooks.read",
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): "webhooks.write",
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): "webhooks.write",
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): "webhooks.write",
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): "webhooks.read",
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/resend"): "webhooks.write",
}
BODIES = {
    ("POST", "/api/v1/keys"): {"name": "probe"},
    ("PATCH", "/api/v1/keys/{key_id}"): {"status": "INACTIVE"},
    ("POST", "/api/v1/keys/{key_id}/rotate"): {"grace_period_seconds": 60},
    ("POST", "/api/v1/keys/verify"): {"key": "akener_" + "0" * 64, "scopes": []},
    ("PUT", "/api/v1/owners/{owner_id}"): {},
    ("POST", "/api/v1/keys/{key_id}/leaked"): {},
    ("POST", "/api/v1/webhooks"): {"url": "https://example.com/hook", "events": ["key.created"]},
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"description": "x"},
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): {},
}


def api_routes() -> list[tuple[str, str]]:
    """Every (method, path) the API serves under /api."""
    paths = build_api().openapi()["paths"]
    return [(m.upper(), p) for p, item in paths.items() for m in item if p.startswith("/api")]


def test_every_api_route_is_in_the_permission_table() -> None:
    assert set(api_routes()) == set(NEEDS)


@pytest.mark.parametrize(("method", "path"), sorted(NEEDS))
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer akener_"},
        {"Authorization": "Bearer akener_" + "A" * 64},
        {"Authorization": "Bearer akener_" + "a" * 63},
        {"Authorization": "Bearer akener_" + "a" * 65},
        {"Authorization": "Bearer akener_" + "a" * 64},
    ],
)
async def test_anonymous_or_bad_credentials_are_401(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    url = path.replace("{key_id}", "0" * 32)
    answer = await client.request(method, url, headers=headers, json=BODIES.get((method, path)))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "UNAUTHORIZED"
    assert answer.json()["error"]["message"] in {MISSING_MESSAGE, REJECTED_MESSAGE}


async def test_every_rejected_key_gets_one_generic_message(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    row, inactive = await make_key(runtime, "off")
    await client.patch(  # deactivate through the API with an admin key
        f"/api/v1/keys/{row.id}",
        json={"status": "INACTIVE"},
        headers=bearer((await make_key(runtime, "admin"))[1]),
    )
    messages = set()
    for key in (inactive, "akener_" + "0" * 64, "akener_" + "0" * 63, "akener_xyz"):
        answer = await client.get("/api/v1/whoami", headers=bearer(key))
        assert answer.status_code == 401
        messages.add(answer.json()["error"]["message"])
    assert messages == {REJECTED_MESSAGE}


@pytest.mark.parametrize(("method", "path"), sorted(r for r, p in NEEDS.items() if p))
async def test_a_key_without_the_permission_is_403(
    client: httpx.AsyncClient, runtime: Runtime, method: str, path: str
) -> None:
    needed = NEEDS[(method, path)]
    assert needed is not None
    target, _ = await make_key(runtime, "target", scopes=[])
    others = [p for p in ALL_PERMISSIONS if p != needed]
    _, key = await make_key(runtime, "lacking", scopes=[*others, "incidents.write"])
    url = path.replace("{key_id}", target.id).replace("{webhook_id}", "0" * 32)
    url = url.replace("{delivery_id}", "0" * 32)
    answer = await client.request(method, url, headers=bearer(key), json=BODIES.get((method, path)))
    assert answer.status_code == 403
    assert needed in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/keys",
        "/api/v1/keys/",
        "/api//v1/keys",
        "//api/v1/keys",
        "/API/v1/keys",
        "/api/V1/KEYS",
        "/api/v1/./keys",
        "/api/v1/x/../keys",
        "/%61pi/v1/keys",
        "/api/v1/%6beys",
        "/api%2Fv1%2Fkeys",
        "/api",
        "/api/",
        "/api/v2/anything",
        "/api/v1/does-not-exist",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
async def test_no_spelling_of_an_api_path_gets_past_without_a_key(
    client: httpx.AsyncClient, path: str, method: str
) -> None:
    # A full URL, so httpx keeps the path exactly (a bare "//api" would read as a host name).
    answer = await client.request(method, f"http://akener.test{path}")
    assert answer.status_code == 401, (method, path, answer.status_code)
    if method != "HEAD":
        assert answer.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v2/keys", "/api/v1/keys/a/b"])
async def test_unknown_api_paths_are_json_404_for_a_valid_key(
    client: httpx.AsyncClient, runtime: Runtime, path: str
) -> None:
    _, key = await make_key(runtime, "admin")
    answer = await client.get(path, headers=bearer(key))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


async def test_wrong_method_is_json_405(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, key = await make_key(runtime, "admin")
    answer = await client.put("/api/v1/keys", headers=bearer(key))
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_error_bodies_never_echo_sql_traces_or_digests(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    row, key = await make_key(runtime, "admin")
    answers = [
        await client.get("/api/v1/keys/' OR 1=1 --", headers=bearer(key)),
        await client.post("/api/v1/keys", json={"name": "admin"}, headers=bearer(key)),
        await client.get("/api/v1/keys", params={"cursor": "Zm9v"}, headers=bearer(key)),
        await client.get(
            "/api/v1/whoami", headers=bearer(key[:-1] + ("1" if key[-1] == "0" else "0"))
        ),
    ]
    for answer in answers:
        text = answer.text
        assert answer.status_code in {401, 404, 409, 422}
        assert not re.search(r"(?i)select |insert |traceback|sqlalchemy|integrity", text)
        assert row.digest not in text and key not in text
