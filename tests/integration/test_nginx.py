"""Real nginx (Debian's) with the exact configuration of docs/forward-auth.md, in front of an
echo upstream, asking a real akener: every documented route, forged identity headers included."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.factories import bearer
from tests.proxies import (
    FORGED,
    Akener,
    Upstream,
    doc_block,
    replace_once,
    start_akener,
    start_upstream,
    stop_process,
    wait_until_up,
)
from tests.servers import akener_cli, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The documented locations that proxy to the API, a path under each, and the scope each needs.
ROUTES = {"/": ("/orders", None), "/admin/": ("/admin/report", "admin")}

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


@dataclass
class Nginx:
    url: str
    process: subprocess.Popen[bytes]


def start_nginx(prefix: Path, site: str) -> Nginx:
    prefix.mkdir(parents=True, exist_ok=True)
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+);", site).group(1))  # type: ignore[union-attr]
    (prefix / "nginx.conf").write_text(WRAPPER.format(prefix=prefix, site=site))
    log = prefix / "error.log"
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url + "/", log, ready=lambda status: status in (401, 503, 500))
    return Nginx(url, process)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server, stop = start_upstream()
    yield server
    stop()


@pytest.fixture(scope="module")
def akener(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Akener]:
    yield from start_akener(sqlite_template, tmp_path_factory.mktemp("akener"))


@pytest.fixture(scope="module")
def nginx(
    akener: Akener, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    site = documented_config(port=free_port(), akener=akener.server.port, upstream=upstream.port)
    server = start_nginx(tmp_path_factory.mktemp("nginx"), site)
    yield server
    stop_process(server.process)


@pytest.fixture
async def client(nginx: Nginx) -> Iterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nginx.url, timeout=5) as http:
        yield http  # type: ignore[misc]


def test_the_documented_routes_are_the_tested_ones() -> None:
    site = doc_block("nginx")
    locations = re.findall(r"^\s*location\s+(/\S*)\s*\{", site, re.M)
    assert set(locations) == set(ROUTES), "test every location of the documented config"


def assert_refusal(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == code  # akener's JSON, not nginx's HTML page


@pytest.mark.parametrize("route", ROUTES)
async def test_missing_and_invalid_keys_are_refused_with_akeners_json(
    client: httpx.AsyncClient, upstream: Upstream, route: str
) -> None:
    path = ROUTES[route][0] + "/missing-invalid"
    missing = await client.get(path, headers=FORGED)
    assert_refusal(missing, 401, "UNAUTHORIZED")
    assert missing.headers["www-authenticate"] == "Bearer"
    for credential in ("akener_" + "0" * 64, "akener_nope"):
        invalid = await client.get(path, headers=FORGED | bearer(credential))
        assert_refusal(invalid, 401, "UNAUTHORIZED")
    assert not upstream.reached(path)


@pytest.mark.parametrize("route", ROUTES)
async def test_valid_key_reaches_the_api_with_akeners_identity_not_the_clients(
    client: httpx.AsyncClient, upstream: Upstream, akener: Akener, route: str
) -> None:
    path = ROUTES[route][0] + "/valid?page=2"
    answer = await client.get(path, headers=FORGED | bearer(akener.keys.admin))
    assert answer.status_code == 200
    seen = upstream.headers_for(path)
    akener_headers = {name: value for name, value in seen.items() if name.startswith("x-akener-")}
    assert akener_headers == {
        "x-akener-key-id": [akener.keys.admin_id],
        "x-akener-key-name": ["ops"],
        "x-akener-scopes": ["admin orders.read"],
    }


async def test_a_key_without_scopes_cannot_claim_any(
    client: httpx.AsyncClient, upstream: Upstream, akener: Akener
) -> None:
    path = "/orders/bare"
    answer = await client.get(path, headers=FORGED | bearer(akener.keys.bare))
    assert answer.status_code == 200
    seen = upstream.headers_for(path)
    assert seen["x-akener-key-id"] == [akener.keys.bare_id]
    assert seen.get("x-akener-scopes", [""]) == [""]  # nginx drops the empty header
    assert "x-akener-required-scope" not in seen and "x-akener-error" not in seen


async def test_a_non_ascii_name_arrives_percent_encoded(
    client: httpx.AsyncClient, upstream: Upstream, akener: Akener
) -> None:
    path = "/orders/name"
    assert (await client.get(path, headers=bearer(akener.keys.reader))).status_code == 200
    assert upstream.headers_for(path)["x-akener-key-name"] == ["D%C3%A9j%C3%A0 vu"]


async def test_the_required_scope_is_enforced(
    client: httpx.AsyncClient, upstream: Upstream, akener: Akener
) -> None:
    path = ROUTES["/admin/"][0] + "/scoped"
    refused = await client.get(path, headers=FORGED | bearer(akener.keys.reader))
    assert_refusal(refused, 403, "FORBIDDEN")
    assert not upstream.reached(path)
    assert (await client.get(path, headers=bearer(akener.keys.admin))).status_code == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_the_clients_query_never_reaches_authz(
    client: httpx.AsyncClient, akener: Akener, route: str
) -> None:
    # akener would refuse these as misconfigured (500) if nginx passed them to /authz.
    path = ROUTES[route][0] + "/query?scopes=x&scope=&Scope=admin"
    assert (await client.get(path, headers=bearer(akener.keys.admin))).status_code == 200


async def test_a_deactivated_key_is_refused_on_every_route(
    client: httpx.AsyncClient, akener: Akener
) -> None:
    for route in ROUTES:
        path = ROUTES[route][0] + "/victim"
        assert (await client.get(path, headers=bearer(akener.keys.victim))).status_code == 200
    done = akener_cli(akener.env, akener.workdir, "keys", "deactivate", akener.keys.victim_id)
    assert done.returncode == 0, done.stderr
    for route in ROUTES:
        path = ROUTES[route][0] + "/victim"
        answer = await client.get(path, headers=bearer(akener.keys.victim))
        assert_refusal(answer, 401, "UNAUTHORIZED")


async def test_akener_down_means_refused_with_json(
    akener: Akener, tmp_path: Path, upstream: Upstream
) -> None:
    site = documented_config(port=free_port(), akener=free_port(), upstream=upstream.port)
    nginx = start_nginx(tmp_path / "nginx", site)
    try:
        async with httpx.AsyncClient(base_url=nginx.url, timeout=5) as http:
            for route in ROUTES:
                path = ROUTES[route][0] + "/down"
                answer = await http.get(path, headers=FORGED | bearer(akener.keys.admin))
                assert_refusal(answer, 503, "SERVICE_UNAVAILABLE")
                assert not upstream.reached(path)
    finally:
        stop_process(nginx.process)


async def test_a_misconfigured_scope_address_refuses_with_akeners_json(
    akener: Akener, tmp_path: Path, upstream: Upstream
) -> None:
    site = documented_config(port=free_port(), akener=akener.server.port, upstream=upstream.port)
    site = replace_once(site, "/authz?scope=admin;", "/authz?scopes=admin;")  # a typo
    nginx = start_nginx(tmp_path / "nginx", site)
    try:
        async with httpx.AsyncClient(base_url=nginx.url, timeout=5) as http:
            path = ROUTES["/admin/"][0] + "/typo"
            answer = await http.get(path, headers=bearer(akener.keys.admin))
            assert_refusal(answer, 500, "AUTHZ_MISCONFIGURED")
            assert not upstream.reached(path)
    finally:
        stop_process(nginx.process)
