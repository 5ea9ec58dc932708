"""The API docs pages: local assets, a strict CSP, the Bearer scheme in the OpenAPI document."""

from __future__ import annotations

import re

import httpx


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
