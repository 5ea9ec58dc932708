"""/docs and /redoc served offline: the Swagger UI and ReDoc files come from a Python package.

The assets ship in ``fastapi-offline`` (no CDN is ever asked), and the pages carry a
Content-Security-Policy that allows only this origin, the one inline script by its hash, and
no framing. The OpenAPI document declares the Bearer scheme every /api route requires.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PREFIX = "/docs/static"
BEARER_SCHEME = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An akener key: `Authorization: Bearer akener_…`",
    }
}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _csp(page: bytes) -> str:
    """A policy for one docs page: its inline scripts by hash, everything else from 'self'."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(page)
    )
    # Swagger UI and ReDoc set inline styles; ReDoc runs its search in a blob: worker.
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _page(response: HTMLResponse) -> HTMLResponse:
    body = bytes(response.body)
    headers = {
        "content-security-policy": _csp(body),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
    }
    return HTMLResponse(body, headers=headers)


def allowed_methods(api: FastAPI, path: str) -> list[str]:
    """Every method the OpenAPI document lists for the path ``path`` matches (for ``Allow``)."""
    for template, operations in api.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return sorted(method.upper() for method in operations)
    return []


def install_docs(api: FastAPI) -> None:
    """Add /docs, /docs/oauth2-redirect, /redoc and their static files to ``api``."""
    static = STATIC_PREFIX
    api.mount(static, StaticFiles(directory=str(files("fastapi_offline") / "static")), "docs")
    swagger = _page(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{api.title} - Swagger UI",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )
    )
    redoc = _page(
        get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{api.title} - ReDoc",
            redoc_js_url=f"{static}/redoc.standalone.js",
            redoc_favicon_url=f"{static}/favicon.png",
            with_google_fonts=False,
        )
    )
    redirect = _page(get_swagger_ui_oauth2_redirect_html())

    @api.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return swagger

    @api.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return redirect

    @api.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return redoc

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = BEARER_SCHEME
            schema["security"] = [{"bearerAuth": []}]
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
