"""The dashboard: a FastAPI app of HTML pages beside the API, sharing the same services."""

from __future__ import annotations

from importlib.resources import files

from fastapi import Depends, FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from akener.web import (
    audit,
    auth,
    key_limits,
    key_page,
    keys,
    overview,
    owners,
    roles,
    users,
    webhooks,
)
from akener.web.deps import QueuedCookiesMiddleware
from akener.web.errors import install_web_error_handlers
from akener.web.forms import refuse_nul
from akener.web.security import SecurityHeadersMiddleware
from akener.web.templating import make_environment


def build_web() -> FastAPI:
    """The dashboard's routes, templates and static files (no OpenAPI: these are pages)."""
    web = FastAPI(
        docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(refuse_nul)]
    )
    web.state.templates = make_environment()
    install_web_error_handlers(web)
    web.mount("/static", StaticFiles(directory=str(files("akener.web") / "static")), "static")
    # keys before key_page: /manage/api-keys/new is a page, not a key id.
    for module in (
        auth,
        overview,
        keys,
        key_page,
        key_limits,
        owners,
        users,
        roles,
        audit,
        webhooks,
    ):
        web.include_router(module.router)
    return web


def wrap_web(web: FastAPI) -> ASGIApp:
    """Outside the framework's own error handling, so even a 500 page gets the headers."""
    return SecurityHeadersMiddleware(QueuedCookiesMiddleware(web))
