"""Header parsing, settings rules and log redaction."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from akener.errors import AuthenticationFailed
from akener.installation.home import write_env_atomically
from akener.logs import JsonFormatter, redact
from akener.settings import Settings, secret_problem
from akener.verify.bearer import MISSING_MESSAGE, authorization_values, parse_bearer

KEY = "akener_" + "ab" * 32


@pytest.mark.parametrize(
    "header", [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER {KEY}", f"  Bearer   {KEY}  "]
)
def test_bearer_scheme_any_case_and_whitespace(header: str) -> None:
    assert parse_bearer([header.encode()]) == KEY


@pytest.mark.parametrize(
    "values",
    [
        [],
        [b"Basic dXNlcjpwYXNz"],
        [KEY.encode()],
        [b"Bearer"],
        [b"Bearer "],
        [f"Bearer {KEY} extra".encode()],
        [f"Bearer {KEY}".encode(), f"Bearer {KEY}".encode()],
        ["Bearer akener_é".encode()],
        [b"Bearer \xff\xfe"],
        [b"Token " + KEY.encode()],
    ],
)
def test_malformed_headers_are_refused_with_the_header_message(values: list[bytes]) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        parse_bearer(values)
    assert info.value.message == MISSING_MESSAGE


def test_authorization_values_reads_every_copy() -> None:
    headers = [(b"authorization", b"a"), (b"host", b"x"), (b"Authorization", b"b")]
    assert authorization_values(headers) == [b"a", b"b"]


def test_database_url_driver_is_chosen() -> None:
    pg = Settings(database_url="postgresql://u@h/db", _env_file=None)  # type: ignore[call-arg]
    assert pg.database_url == "postgresql+asyncpg://u@h/db"
    assert not pg.is_sqlite
    lite = Settings(database_url="sqlite:///x.db", _env_file=None)  # type: ignore[call-arg]
    assert lite.database_url == "sqlite+aiosqlite:///x.db"
    assert lite.is_sqlite


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "not set"),
        ("changeme", "placeholder"),
        (" CHANGEME ", "placeholder"),
        ("changeme" * 5, "placeholder"),
        ("x" * 40, "placeholder"),
        ("<a long random secret>", "placeholder"),
        ("short-but-real", "shorter than 32"),
        ("k3Jd8-wQpL2zR7vN0aYc5TgH1mXe6sBf", None),
    ],
)
def test_secret_rules(secret: str | None, problem: str | None) -> None:
    settings = Settings(secret_key=secret, _env_file=None)  # type: ignore[call-arg]
    found = secret_problem(settings)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        # a weak secret that keys depend on can stay as an old version: the line says how
        if secret is not None:
            assert "AKENER_OLD_SECRET_KEYS=1:<weak secret>" in found
            assert "AKENER_SECRET_KEY_VERSION=2" in found


def test_old_secrets_keep_their_versions() -> None:
    settings = Settings(
        secret_key="n" * 40,
        secret_key_version=3,
        old_secret_keys="1:" + "a" * 40 + ", 2:" + "b" * 40,
        _env_file=None,  # type: ignore[call-arg]
    )
    assert sorted(settings.peppers()) == [1, 2, 3]
    bad = Settings(old_secret_keys="nocolon", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="1:<secret>"):
        bad.peppers()


def test_generated_env_is_written_atomically_and_is_private(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("OTHER=1")
    env.chmod(0o644)
    write_env_atomically(env, "s3cret")
    assert env.read_text() == "OTHER=1\nAKENER_SECRET_KEY=s3cret\n"
    assert env.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temporary file left behind


@pytest.mark.parametrize(
    "text",
    [
        f"path /x/{KEY}",
        f"Authorization: Bearer {KEY}",
        '{"authorization": "Basic dXNlcjpwYXNz"}',
        f"bearer {KEY[:20]}",
    ],
)
def test_redaction_removes_keys_and_credentials(text: str) -> None:
    cleaned = redact(text)
    assert KEY[7:27] not in cleaned
    assert "dXNlcjpwYXNz" not in cleaned
    assert "REDACTED" in cleaned


def test_json_formatter_redacts_messages_and_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"msg": "got %s", "args": (KEY,), "levelname": "INFO", "name": "t", "path": f"/k/{KEY}"}
    )
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert KEY not in line
    assert data["message"] == "got akener_[REDACTED]"
    assert data["path"] == "/k/akener_[REDACTED]"


MIXED = "akener_" + "0123456789abcdef" * 4
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")


@pytest.mark.parametrize(
    "disguised",
    [
        MIXED.removeprefix("akener_"),  # the bare 64-hex body
        MIXED.removeprefix("akener_").upper(),
        *(sep.join(MIXED) for sep in ZERO_WIDTH),  # broken up by an invisible character
        "\u200b".join(MIXED.removeprefix("akener_")),
        MIXED.replace("a", "\u0430").replace("e", "\u0435"),  # Cyrillic look-alikes
        MIXED.replace("k", "\u03ba").replace("o", "\u03bf"),  # Greek look-alikes
        "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in MIXED),  # fullwidth forms
        "".join(chr(0x1D7CE + int(c)) if c.isdigit() else c for c in MIXED),  # math digits
    ],
)
def test_redaction_sees_through_bare_and_disguised_keys(disguised: str) -> None:
    cleaned = redact(f"user pasted «{disguised}» here")
    assert "REDACTED" in cleaned
    assert cleaned.startswith("user pasted «") and cleaned.endswith("» here")
    body = MIXED.removeprefix("akener_")
    skeleton = "".join(c for c in cleaned.lower() if c.isascii() and c.isalnum())
    assert body[:16] not in skeleton and body[-16:] not in skeleton


def test_redaction_leaves_ordinary_text_alone() -> None:
    text = "Zoë's café key “Deploy” — 42 requests, id 3f2a9c"
    assert redact(text) == text
