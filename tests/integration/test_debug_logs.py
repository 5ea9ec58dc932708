"""At debug level akener logs SQL, never its parameters: no digest, session or CSRF token."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from akener.accounts.sessions import token_digest
from akener.keys import tokens
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD
from tests.servers import AKENER, AkenerServer, akener_cli, akener_env


def test_debug_logs_hold_no_sql_parameters(tmp_path: Path) -> None:
    env = akener_env(None, TEST_SECRET, AKENER_LOG_LEVEL="debug")
    assert akener_cli(env, tmp_path, "db", "upgrade").returncode == 0
    key = akener_cli(env, tmp_path, "keys", "create", "--name", "Logged").stdout.strip()
    created = subprocess.run(
        [*AKENER, "users", "create", "--email", "ada@example.com", "--role", "admin"],
        env=env,
        cwd=tmp_path,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    with AkenerServer(env, tmp_path) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).is_success
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert csrf is not None
        signed = client.post(
            "/login",
            data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": csrf.group(1)},
        )
        assert signed.status_code == 303
        cookie = client.cookies["akener_session"]
        keys_page = client.get("/manage/api-keys")
        session_csrf = re.search(r'name="csrf_token" value="([^"]*)"', keys_page.text)
        assert session_csrf is not None
        log = server.log_text()
    assert "SELECT" in log and "sqlalchemy.engine" in log  # SQL is logged at debug level
    digest = tokens.digest(key, tokens.derive_pepper(TEST_SECRET.encode(), 1))
    for secret in (
        digest,
        key.removeprefix("akener_"),
        cookie,
        token_digest(cookie),
        csrf.group(1),
        session_csrf.group(1),
    ):
        assert secret not in log
    assert "$argon2" not in log and PASSWORD not in log
    assert '"aiosqlite"' not in log  # its debug lines repeat every statement's parameters
    assert "REDACTED" not in log  # nothing was left for the redaction to catch
