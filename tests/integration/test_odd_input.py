"""No input anywhere gets a 500: odd values in every path id, query parameter, body and form field.

Odd means what a person or a fuzzer may send that akener never made: NUL bytes (PostgreSQL
refuses them in text), dates at the edges of the calendar with extreme UTC offsets, huge
numbers, non-ASCII digits, cursors that are not akener's. Each route is its own test case, so a
new route is covered by being declared; both databases through the ``backend`` fixture.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from akener.api import audit as api_audit
from akener.api import keys as api_keys
from akener.api import verify as api_verify
from akener.app import AkenerApp
from akener.runtime import Runtime
from tests.factories import bearer, csrf_of, make_key, make_role, make_user, sign_in
from tests.integration.test_dashboard_matrix import ROUTES as WEB_ROUTES

ODD_TEXT = [
    "\x00",
    "a\x00b",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31",
    "0001-01-01",
    "9" * 40,
    "-1",
    "\u0661\u0662\u0663",  # Arabic-Indic digits: str.isdigit() says yes, int() reads them
    "\uff11\uff12",  # full-width digits
    "AAAA====",
    "!!notbase64",
    "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwA",  # base64 of a date, "|" and NUL
    "OTk5OS0xMi0zMVQyMzo1OTo1OS0yMzo1OXx4",  # base64 of an edge date with -23:59
]
ODD_IDS = ["%00", "a%00b", "9" * 40, "%D9%A1%D9%A2", "%FF", "..%2F..", "x" * 300]

ROUTERS = (api_keys.router, api_audit.router, api_verify.router)
API_ROUTES = sorted(
    (method, route.path)
    for router in ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods
)


def _api_route(path: str) -> APIRoute:
    return next(
        r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) and r.path == path
    )


def _no_server_error(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text, what


def _api_is_json_error(response: httpx.Response, what: str) -> None:
    _no_server_error(response, what)
    if response.status_code >= 400:
        assert response.json()["error"]["code"], what


def _api_bodies(path: str) -> dict[str, Any]:
    if path.endswith("/rotate"):
        return {"grace_period_seconds": 0}
    if path.endswith("/verify"):
        return {"key": "akener_" + "0" * 64, "scopes": ["a"]}
    if path == "/api/v1/keys":
        return {"name": "odd", "scopes": [], "expires_at": None}
    return {"name": "odd", "status": "ACTIVE", "expires_at": None}


def _odd_values(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [[v] for v in ODD_TEXT] + [ODD_TEXT[0], 10**30]
    return [*ODD_TEXT, 10**30, -(10**30), 1e308, [], {}, True]


@pytest.mark.parametrize(("method", "path"), API_ROUTES, ids=[f"{m} {p}" for m, p in API_ROUTES])
async def test_api_route_answers_4xx_json_to_odd_input(
    client: httpx.AsyncClient, runtime: Runtime, method: str, path: str
) -> None:
    _, admin = await make_key(runtime, "fuzz admin")
    target, _ = await make_key(runtime, "target", scopes=[])
    auth = bearer(admin)
    # Path ids that akener never made.
    if "{" in path:
        for odd in ODD_IDS:
            url = re.sub(r"\{[^}]+\}", odd, path)
            answer = await client.request(method, url, headers=auth, json=_api_bodies(path))
            _api_is_json_error(answer, f"{method} {url}")
    url = path.replace("{key_id}", target.id)
    # Every query parameter the route declares, and some it does not.
    route = _api_route(path)
    names = [p.alias for p in route.dependant.query_params] + ["cursor", "since", "zzz"]
    for name in names:
        for odd in ODD_TEXT:
            answer = await client.request(method, url, params={name: odd}, headers=auth)
            _api_is_json_error(answer, f"{method} {url}?{name}={odd!r}")
    if method not in ("POST", "PATCH"):
        return
    # Every body field, one at a time, given each odd value.
    base = _api_bodies(path)
    for field, value in base.items():
        for odd in _odd_values(value):
            answer = await client.request(method, url, json={**base, field: odd}, headers=auth)
            _api_is_json_error(answer, f"{method} {url} {field}={odd!r}")
    for raw in (b"{", b"\x00", b'{"name": "\\u0000"}', b"[]", b"null", '{"name": "\u00e9"}'):
        answer = await client.request(
            method, url, content=raw, headers={**auth, "content-type": "application/json"}
        )
        _api_is_json_error(answer, f"{method} {url} body {raw!r}")


FORM_FIELDS = [
    "name",
    "display_name",
    "description",
    "email",
    "password",
    "password_confirm",
    "scope",
    "scopes",
    "expires_in",
    "expires_on",
    "grace_period_seconds",
    "status",
    "active",
    "role",
    "permission",
    "next",
    "return_to",
    "token",
    "actor",
    "action",
    "target",
    "since",
    "until",
    "cursor",
    "q",
]
FORM_ODD = ["a\x00b", "9999-12-31", "0001-01-01", "9" * 40, "\u0661\u0662", *ODD_TEXT[2:4]]


def _form(path: str, csrf: str) -> dict[str, str]:
    data = {"csrf_token": csrf, "name": "Odd", "status": "INACTIVE", "active": "false"}
    data.update(grace_period_seconds="0", expires_in="custom", expires_on="2099-01-01")
    if path == "/manage/users":
        data.update(email="new@example.com", display_name="New", password="x" * 12)
        data.update(password_confirm="x" * 12, role="member")
    return data


# Signing out ends the session the other requests need; a user form hashes a password per try.
ROUTE_FIELDS = {
    "/logout": ["csrf_token"],
    "/manage/users": ["email", "display_name", "password", "role", "csrf_token"],
}
WEB_IDS = [f"{m} {p}" for m, p, _ in WEB_ROUTES]


@pytest.mark.parametrize(("method", "path", "_needs"), WEB_ROUTES, ids=WEB_IDS)
async def test_dashboard_route_answers_a_page_to_odd_input(
    app: AkenerApp, runtime: Runtime, method: str, path: str, _needs: object
) -> None:
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    key, _ = await make_key(runtime, "target key", scopes=[])
    member = await make_user(runtime, "target@example.com", "member")
    role = await make_role(runtime, "Spare", ["api_keys.read"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as web:
        if path in ("/login", "/setup"):  # pages for people not signed in
            csrf = csrf_of((await web.get("/login")).text)
        else:
            csrf = await sign_in(web, "owner@example.com")
        if "{" in path:
            for odd in ODD_IDS:
                url = re.sub(r"\{[^}]+\}", odd, path)
                data = _form(path, csrf) if method == "POST" else None
                _no_server_error(await web.request(method, url, data=data), f"{method} {url}")
        url = path.format(
            key_id=key.id,
            user_id=member.id,
            role_id=role.id,
            webhook_id="0" * 32,  # unknown: the page answers 404, never a 500
            delivery_id="0" * 32,
            figure="traffic-30",
            owner_id="no_such_owner",
        )
        for field in ROUTE_FIELDS.get(path, FORM_FIELDS):
            for odd in FORM_ODD:
                if method == "GET":
                    answer = await web.request(method, url, params={field: odd})
                    _no_server_error(answer, f"{method} {url}?{field}={odd!r}")
                else:
                    data = {**_form(path, csrf), field: odd}
                    answer = await web.request(method, url, data=data)
                    _no_server_error(answer, f"{method} {url} {field}={odd!r}")
