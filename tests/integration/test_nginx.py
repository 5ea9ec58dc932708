"""A real nginx with ``auth_request`` in front of an echo upstream, asking a real akener."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key
from tests.servers import AkenerServer, akener_cli, akener_env, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_akener;
            auth_request_set $akener_key_id $upstream_http_x_akener_key_id;
            auth_request_set $akener_key_name $upstream_http_x_akener_key_name;
            auth_request_set $akener_scopes $upstream_http_x_akener_scopes;
            proxy_set_header X-Akener-Key-Id $akener_key_id;
            proxy_set_header X-Akener-Key-Name $akener_key_name;
            proxy_set_header X-Akener-Scopes $akener_scopes;
            proxy_pass http://127.0.0.1:{upstream};
        }}
        location /admin/ {{
            auth_request /_akener_admin;
            proxy_pass http://127.0.0.1:{upstream};
        }}
        location = /_akener {{
            internal;
            proxy_pass http://127.0.0.1:{akener}/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
        location = /_akener_admin {{
            internal;
            proxy_pass http://127.0.0.1:{akener}/authz?scope=admin;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
    }}
}}
"""


class Echo(BaseHTTPRequestHandler):
    """Answers 200 with the request's headers as JSON."""

    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def start_nginx(prefix: Path, conf: str, port: int) -> subprocess.Popen[bytes]:
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(conf)
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "e.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RuntimeError((prefix / "error.log").read_text())
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)


async def test_nginx_auth_request(sqlite_template: Path, tmp_path: Path, upstream: int) -> None:
    database = tmp_path / "akener.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite+aiosqlite:///{database}"
    settings = Settings(database_url=url, secret_key=TEST_SECRET, _env_file=None)  # type: ignore[call-arg]
    runtime = await Runtime.start(settings)
    try:
        row, key = await make_key(runtime, "Déjà vu", scopes=["orders.read"])
        _, admin = await make_key(runtime, "ops", scopes=["admin"])
    finally:
        await runtime.close()
    env = akener_env(url, TEST_SECRET)
    port = free_port()
    with AkenerServer(env, tmp_path / "akener") as akener:
        conf = CONF.format(
            prefix=tmp_path / "nginx", port=port, upstream=upstream, akener=akener.port
        )
        nginx = start_nginx(tmp_path / "nginx", conf, port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                assert (await client.get("/orders")).status_code == 401
                bad = await client.get("/orders", headers=bearer("akener_" + "0" * 64))
                assert bad.status_code == 401
                forged = {"X-Akener-Key-Id": "forged"} | bearer(key)
                good = await client.get("/orders?page=2", headers=forged)
                assert good.status_code == 200
                seen = good.json()
                assert seen["x-akener-key-id"] == row.id  # akener's answer, not the client's
                assert seen["x-akener-key-name"] == "D%C3%A9j%C3%A0 vu"
                assert seen["x-akener-scopes"] == "orders.read"
                assert (await client.get("/admin/x", headers=bearer(key))).status_code == 403
                assert (await client.get("/admin/x", headers=bearer(admin))).status_code == 200
                done = akener_cli(env, tmp_path, "keys", "deactivate", row.id)
                assert done.returncode == 0, done.stderr
                assert (await client.get("/orders", headers=bearer(key))).status_code == 401
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
