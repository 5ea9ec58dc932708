"""Redirects never echo the Host header: relative paths, or built from AKENER_PUBLIC_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from akener.app import AkenerApp
from akener.redirects import local_target
from akener.settings import Settings
from tests.conftest import TEST_SECRET

# Paths that redirect: trailing slashes (built by the framework from Host), sign-in, protocol-
# relative spellings that would point a browser at another host.
PATHS = [
    "/manage/api-keys/",
    "/manage",
    "/",
    "//evil.example/",
    "/\\evil.example/",
    "//evil.example/manage/",
    "/manage/audit/",
    "/api/v1/keys/",
]
HOSTILE = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


async def _locations(settings: Settings) -> list[str]:
    found = []
    app = AkenerApp(settings)
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as c:
            for path in PATHS:
                answer = await c.get(path, headers=HOSTILE)
                if answer.is_redirect:
                    found.append(answer.headers["location"])
    assert len(found) >= 5, found  # the probes above really redirect
    return found


async def test_redirects_are_relative_and_never_name_the_request_host(settings: Settings) -> None:
    for location in await _locations(settings):
        assert "evil.example" not in urlsplit(location).netloc, location
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location


async def test_redirects_use_the_configured_public_url(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url="https://keys.example.com/",
        _env_file=None,  # type: ignore[call-arg]
    )
    for location in await _locations(settings):
        assert location.startswith("https://keys.example.com/"), location
        assert not location.startswith("https://keys.example.com//"), location


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://evil.example/manage?x=1", "/manage?x=1"),
        ("//evil.example/x", "/x"),
        ("/\\evil.example", "/evil.example"),
        ("/\t/evil.example", "/"),
        ("/login?next=/manage", "/login?next=/manage"),
    ],
)
def test_local_target_keeps_only_the_path(location: str, expected: str) -> None:
    assert local_target(location, None) == expected


@pytest.mark.parametrize("bad", ["keys.example.com", "ftp://x", "https://x/?a=1", "https://u:p@x"])
def test_public_url_must_be_an_http_origin(bad: str) -> None:
    with pytest.raises(ValueError, match="AKENER_PUBLIC_URL"):
        Settings(public_url=bad, _env_file=None)  # type: ignore[call-arg]
