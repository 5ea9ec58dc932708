"""Account rules over HTTP: sign-in, throttling, sessions, CSRF, headers, first-run setup."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from akener.accounts.models import User, WebSession
from akener.accounts.sessions import setup_token
from akener.app import AkenerApp
from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, csrf_of, make_key, make_user, sign_in


async def _count(runtime: Runtime, model: type) -> int:
    async with runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )


async def test_wrong_password_and_unknown_email_get_the_same_message(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    wrong = await _login(client, "ada@example.com", "not the password")
    unknown = await _login(client, "nobody@example.com", PASSWORD)
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "Wrong email or password." in answer.text
    assert await _count(runtime, WebSession) == 0


async def test_inactive_user_cannot_sign_in(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await make_user(runtime, "gone@example.com", "admin", active=False)
    assert (await _login(client, "gone@example.com", PASSWORD)).status_code == 401


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    for _ in range(runtime.settings.login_max_failures):
        assert (await _login(client, "ada@example.com", "guess guess guess")).status_code == 401
    locked = await _login(client, "ada@example.com", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.text and "minutes" in locked.text
    assert await _count(runtime, WebSession) == 0


@pytest.fixture
async def strict_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that tolerates only three failures per address."""
    strict = settings.model_copy(update={"login_max_failures_per_address": 3})
    application = AkenerApp(strict)
    async with application.running():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as c:
            c.runtime = application.runtime  # type: ignore[attr-defined]
            yield c


async def test_failures_from_one_address_lock_it_across_accounts(
    strict_client: httpx.AsyncClient,
) -> None:
    runtime: Runtime = strict_client.runtime  # type: ignore[attr-defined]
    await make_user(runtime, "ada@example.com", "admin")
    for n in range(3):
        await _login(strict_client, f"guess{n}@example.com", "whatever whatever")
    locked = await _login(strict_client, "ada@example.com", PASSWORD)
    assert locked.status_code == 429


async def test_success_clears_the_account_failures(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    for _ in range(runtime.settings.login_max_failures - 1):
        await _login(client, "ada@example.com", "guess guess guess")
    assert (await _login(client, "ada@example.com", PASSWORD)).status_code == 303
    await client.post(
        "/logout", data={"csrf_token": csrf_of((await client.get("/manage/api-keys")).text)}
    )
    await _login(client, "ada@example.com", "guess guess guess")
    assert (await _login(client, "ada@example.com", PASSWORD)).status_code == 303


async def test_session_cookie_flags_and_only_a_digest_is_stored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    answer = await _login(client, "ada@example.com", PASSWORD)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "akener_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = client.cookies["akener_session"]
    async with runtime.sessionmaker() as session:
        row = await session.scalar(select(WebSession))
    assert row is not None and token not in (row.token_digest, row.csrf_token)
    assert len(row.token_digest) == 64


async def test_session_cookie_is_secure_over_https(app: AkenerApp, runtime: Runtime) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://akener.test") as c:
        answer = await _login(c, "ada@example.com", PASSWORD)
    assert "Secure" in next(
        v for v in answer.headers.get_list("set-cookie") if "akener_session=" in v
    )


async def test_logout_revokes_the_session_on_the_server(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    csrf = await sign_in(client, "ada@example.com")
    stolen = client.cookies["akener_session"]
    out = await client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert await _count(runtime, WebSession) == 0
    client.cookies.set("akener_session", stolen, domain="akener.test")
    again = await client.get("/manage/api-keys")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


async def test_deactivating_a_user_ends_their_sessions(
    app: AkenerApp, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    bob = await make_user(runtime, "bob@example.com", "editor")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as bobs:
        await sign_in(bobs, "bob@example.com")
        assert (await bobs.get("/manage/api-keys")).status_code == 200
        csrf = await sign_in(client, "owner@example.com")
        off = await client.post(
            f"/manage/users/{bob.id}/status", data={"csrf_token": csrf, "active": "false"}
        )
        assert off.status_code == 303
        assert (await bobs.get("/manage/api-keys")).status_code == 303
    assert await _count(runtime, WebSession) == 1  # the owner's


async def test_forged_and_expired_session_cookies_are_ignored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    client.cookies.set("akener_session", "forged-" + "a" * 40, domain="akener.test")
    assert (await client.get("/manage/api-keys")).status_code == 303
    assert "Your session has ended" in (await client.get("/login")).text
    await sign_in(client, "ada@example.com")
    async with runtime.sessionmaker() as session:
        row = await session.scalar(select(WebSession))
        assert row is not None
        row.expires_at = row.created_at
        await session.commit()
    assert (await client.get("/manage/api-keys")).status_code == 303


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["missing", "empty", "wrong"])
async def test_csrf_missing_or_wrong_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, token: str | None
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    await sign_in(client, "ada@example.com")
    row, _ = await make_key(runtime, "kept", scopes=[])
    data = {} if token is None else {"csrf_token": token}
    attempts = [
        ("/manage/api-keys", {"name": "forged"}),
        (f"/manage/api-keys/{row.id}/status", {"status": "INACTIVE"}),
        (f"/manage/api-keys/{row.id}/delete", {}),
        ("/manage/roles", {"name": "Forged", "permission": "api_keys.read"}),
        ("/logout", {}),
    ]
    for path, fields in attempts:
        answer = await client.post(path, data={**data, **fields})
        assert answer.status_code == 403, path
        assert "could not be verified" in answer.text
    async with runtime.sessionmaker() as session:
        keys = list((await session.execute(select(ApiKey))).scalars())
    assert [(k.name, k.status) for k in keys] == [("kept", "ACTIVE")]
    assert (await client.get("/manage/roles")).text.count("Forged") == 0
    assert await _count(runtime, WebSession) == 1


async def test_csrf_token_of_another_session_is_refused(
    app: AkenerApp, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    await make_user(runtime, "eve@example.com", "admin")
    await sign_in(client, "ada@example.com")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as eve:
        eves = await sign_in(eve, "eve@example.com")
    answer = await client.post("/manage/api-keys", data={"csrf_token": eves, "name": "x"})
    assert answer.status_code == 403


async def test_login_form_needs_its_csrf_token(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    answer = await client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert answer.status_code == 403
    assert await _count(runtime, WebSession) == 0


async def test_security_headers_and_html_404(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and "style=" not in page.text
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    api_missing = await client.get("/api/v1/nothing")
    assert api_missing.status_code == 401
    assert api_missing.headers["content-type"] == "application/json"


def _setup_url() -> str:
    return f"/setup?token={setup_token(TEST_SECRET.encode())}"


async def test_first_run_setup_needs_the_printed_link_and_works_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert (await client.get("/setup?token=guess")).status_code == 404
    assert "No account exists yet" in (await client.get("/login")).text
    page = await client.get(_setup_url())
    assert page.status_code == 200
    fields = {
        "csrf_token": csrf_of(page.text),
        "token": setup_token(TEST_SECRET.encode()),
        "email": "Ada@Example.com",
        "display_name": "Ada",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    short = await client.post(
        "/setup", data={**fields, "password": "short", "password_confirm": "short"}
    )
    assert short.status_code == 422 and "at least 12 characters" in short.text
    mismatch = await client.post("/setup", data={**fields, "password_confirm": "different pass"})
    assert mismatch.status_code == 422 and "do not match" in mismatch.text
    bad_token = await client.post("/setup", data={**fields, "token": "guess"})
    assert bad_token.status_code == 404
    assert await _count(runtime, User) == 0
    done = await client.post("/setup", data=fields)
    assert done.status_code == 303 and done.headers["location"] == "/manage/api-keys"
    welcome = await client.get("/manage/api-keys")
    assert welcome.status_code == 200 and "Welcome, Ada" in welcome.text
    async with runtime.sessionmaker() as session:
        owner = await session.scalar(select(User))
        assert owner is not None and owner.is_owner and owner.email == "ada@example.com"
        assert owner.password_hash.startswith("$argon2id$")
        assert [r.name for r in owner.roles] == ["admin"]
    again = await client.get(_setup_url())
    assert again.status_code == 303 and again.headers["location"] == "/login"
    replay = await client.post("/setup", data={**fields, "csrf_token": csrf_of(welcome.text)})
    assert replay.status_code == 409
    assert await _count(runtime, User) == 1
