"""Real nginx (Debian's) with the exact configuration of docs/forward-auth.md, in front of an
echo upstream, asking a real akener: every documented route, forged identity headers included.
The shared tests come from tests/proxies.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.factories import bearer
from tests.proxies import (  # noqa: F401 (the shared tests, collected here)
    FORGED,
    Akener,
    Route,
    Upstream,
    akener,
    assert_refusal,
    doc_block,
    replace_once,
    stop_process,
    test_a_deactivated_key_is_refused_on_every_route,
    test_a_key_without_scopes_cannot_claim_any,
    test_a_non_ascii_name_arrives_percent_encoded,
    test_a_rate_limited_key_gets_a_429_with_retry_after,
    test_a_valid_key_reaches_the_api_with_akeners_identity_never_the_clients,
    test_akener_unreachable_means_refused,
    test_connections_to_akener_are_kept_alive,
    test_missing_and_invalid_keys_are_refused_with_akeners_json,
    test_the_clients_query_never_reaches_authz,
    test_the_owner_and_the_credits_left_reach_the_api,
    test_the_required_scope_is_enforced,
    upstream,
    wait_until_up,
)
from tests.servers import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# A request for each documented location that proxies to the API.
LOCATIONS = {"/": Route("GET", "/orders", None), "/admin/": Route("GET", "/admin/report", "admin")}

WRAPPER = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{site}
}}
"""


def documented_config(*, port: int, akener: int, upstream: int) -> str:
    """The nginx block of docs/forward-auth.md, on the test's ports."""
    site = doc_block("nginx")
    site = replace_once(site, "listen 80;", f"listen 127.0.0.1:{port};")
    site = replace_once(site, "127.0.0.1:8000", f"127.0.0.1:{akener}")
    return replace_once(site, "127.0.0.1:9000", f"127.0.0.1:{upstream}")


@contextmanager
def running_nginx(prefix: Path, site: str) -> Iterator[str]:
    """nginx with ``site`` in its http block; gives its URL."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+);", site).group(1))  # type: ignore[union-attr]
    (prefix / "nginx.conf").write_text(WRAPPER.format(prefix=prefix, site=site))
    log = prefix / "error.log"
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(process, url + "/", log, ready=lambda status: status in (401, 500, 503))
        yield url
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def proxy_url(
    akener: Akener, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    site = documented_config(port=free_port(), akener=akener.server.port, upstream=upstream.port)
    with running_nginx(tmp_path_factory.mktemp("nginx"), site) as url:
        yield url


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return list(LOCATIONS.values())


@pytest.fixture
def proxy_without_akener(
    upstream: Upstream, tmp_path: Path
) -> Callable[[], AbstractContextManager[str]]:
    site = documented_config(port=free_port(), akener=free_port(), upstream=upstream.port)
    return lambda: running_nginx(tmp_path / "nginx", site)


@pytest.fixture
def proxy_to(upstream: Upstream, tmp_path: Path) -> Callable[[int], AbstractContextManager[str]]:
    return lambda port: running_nginx(
        tmp_path / "nginx-to",
        documented_config(port=free_port(), akener=port, upstream=upstream.port),
    )


def test_every_documented_location_is_tested() -> None:
    locations = re.findall(r"^\s*location\s+(/\S*)\s*\{", doc_block("nginx"), re.M)
    assert set(locations) == set(LOCATIONS)


def test_akener_unreachable_is_a_json_503(
    proxy_without_akener: Callable[[], AbstractContextManager[str]], akener: Akener
) -> None:
    with proxy_without_akener() as url, httpx.Client(base_url=url, timeout=5) as http:
        for route in LOCATIONS.values():
            answer = http.get(route.path, headers=FORGED | bearer(akener.keys.admin))
            assert_refusal(answer, 503, "SERVICE_UNAVAILABLE")


def test_a_misconfigured_scope_address_refuses_with_akeners_json(
    akener: Akener, tmp_path: Path, upstream: Upstream
) -> None:
    site = documented_config(port=free_port(), akener=akener.server.port, upstream=upstream.port)
    site = replace_once(site, "/authz?scope=admin;", "/authz?scopes=admin;")  # a typo
    with running_nginx(tmp_path / "nginx", site) as url, httpx.Client(base_url=url) as http:
        path = LOCATIONS["/admin/"].path + "/typo"
        answer = http.get(path, headers=bearer(akener.keys.admin))
        assert_refusal(answer, 500, "AUTHZ_MISCONFIGURED")
        assert not upstream.reached(path)
