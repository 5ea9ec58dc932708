"""The API docs pages: local assets, a strict CSP, the Bearer scheme in the OpenAPI document."""

from __future__ import annotations

import re

import httpx

from akener.runtime import Runtime
from tests.factories import bearer, make_key


async def test_docs_pages_use_local_assets_under_a_csp(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        page = await client.get(path)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "https://" not in csp
        for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert src.startswith("/"), f"{path} loads {src}"
            assert (await client.get(src)).status_code == 200, src


async def test_openapi_declares_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer"}
    assert schema["security"] == [{"bearerAuth": []}]


async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "admin")
    expected = {
        "/api/v1/keys": "GET, POST",
        "/api/v1/keys/" + "0" * 32: "DELETE, GET, PATCH",
        "/api/v1/keys/" + "0" * 32 + "/rotate": "POST",
    }
    for path, allow in expected.items():
        answer = await client.request("PUT", path, headers=bearer(key))
        assert answer.status_code == 405 and answer.headers["allow"] == allow, path


async def test_unreadable_json_is_a_documented_400(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path, method in (("/api/v1/keys", "post"), ("/api/v1/keys/{key_id}", "patch")):
        assert "400" in schema["paths"][path][method]["responses"], (method, path)
