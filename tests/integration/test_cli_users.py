"""``akener users create`` against a real database, password piped on stdin."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from akener.accounts import passwords
from akener.accounts.models import User
from akener.cli import app
from akener.db.engine import make_engine, make_sessionmaker
from akener.errors import AkenerError
from tests.conftest import TEST_SECRET


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> str:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("AKENER_DATABASE_URL", database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", TEST_SECRET)
    return database_url


def _users(url: str) -> list[tuple[str, bool, list[str], str]]:
    async def read() -> list[tuple[str, bool, list[str], str]]:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                rows = (await session.execute(select(User).order_by(User.email))).scalars()
                return [
                    (u.email, u.is_owner, [r.name for r in u.roles], u.password_hash) for u in rows
                ]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def run(*args: str, stdin: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["users", "create", *args], input=stdin)
    # main() turns an AkenerError into "error: …" on stderr; the runner calls the app directly.
    error = result.exception.message if isinstance(result.exception, AkenerError) else ""
    return result.exit_code, result.output + error


def test_first_user_is_the_owner_and_needs_admin(env: str) -> None:
    code, out = run("--email", "ada@example.com", "--role", "member", stdin="long enough pass\n")
    assert code != 0 and "needs the admin role" in out
    assert _users(env) == []
    code, out = run("--email", "Ada@Example.com", "--role", "admin", stdin="long enough pass\n")
    assert code == 0, out
    code, out = run("--email", "bob@example.com", "--role", "editor", stdin="another good one\n")
    assert code == 0, out
    [(ada, owner, roles, hashed), (bob, bob_owner, bob_roles, _)] = _users(env)
    assert (ada, owner, roles) == ("ada@example.com", True, ["admin"])
    assert (bob, bob_owner, bob_roles) == ("bob@example.com", False, ["editor"])
    assert asyncio.run(passwords.verify_password(hashed, "long enough pass"))


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--email", "not-an-email", "--role", "admin"), "long enough pass\n", "valid email"),
        (("--email", "a@example.com", "--role", "nope"), "long enough pass\n", "no role named"),
        (("--email", "a@example.com", "--role", "admin"), "short\n", "at least 12"),
        (("--email", "a@example.com", "--role", "admin"), "", "no password on stdin"),
    ],
    ids=["email", "role", "short", "no-stdin"],
)
def test_bad_input_creates_nothing(
    env: str, args: tuple[str, ...], stdin: str, message: str
) -> None:
    code, out = run(*args, stdin=stdin)
    assert code != 0 and message in out
    assert _users(env) == []


def test_serve_prints_the_setup_link_only_while_no_user_exists(env: str) -> None:
    from akener.accounts.sessions import setup_token_valid
    from akener.cli.serve import setup_link
    from akener.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    link = setup_link(settings, "0.0.0.0", 8123)  # noqa: S104 - shown as a loopback link
    assert link is not None and link.startswith("http://127.0.0.1:8123/setup?token=")
    assert setup_token_valid(TEST_SECRET.encode(), link.split("token=")[1])
    assert run("--email", "ada@example.com", "--role", "admin", stdin="long enough pass\n")[0] == 0
    assert setup_link(settings, "127.0.0.1", 8123) is None
