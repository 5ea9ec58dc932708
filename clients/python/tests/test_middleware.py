"""Each middleware in a real app served by a real HTTP server, checking keys of a real akener:
200 with the key's identity, 401/403/429 as akener answers them, 503 when akener is out of
reach. FastAPI under uvicorn, Flask under werkzeug's server, Django and a plain WSGI app under
the standard library's WSGI server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from akener_client import AkenerClient, Verification, Verifier
from tests.conftest import Server

SCOPE = "reports.read"
DEAD = "http://127.0.0.1:9"  # nothing listens there: akener out of reach


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def identity(key: Verification) -> dict[str, Any]:
    """What every test app answers: the key the middleware gave the route."""
    return {
        "id": key.key_id,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "owner_id": key.owner_id,
    }


# --- the apps -----------------------------------------------------------------------------------


def fastapi_app(verifier: Verifier) -> Any:
    from fastapi import Depends, FastAPI

    from akener_client.middleware.asgi import install, require_key

    app = FastAPI()
    install(app)
    checked = Depends(require_key(verifier, SCOPE))

    @app.get("/whoami")
    async def whoami(key: Verification = checked) -> dict[str, Any]:
        return identity(key)

    return app


def flask_app(verifier: Verifier) -> Any:
    from flask import Flask, g

    from akener_client.middleware.flask import require_key

    app = Flask("akener-test")

    @app.get("/whoami")
    @require_key(verifier, SCOPE)
    def whoami() -> dict[str, Any]:
        return identity(g.akener_key)

    return app


def wsgi_app(verifier: Verifier) -> Any:
    import json

    from akener_client.middleware.wsgi import ENVIRON_KEY, AkenerWSGIMiddleware

    def plain(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = json.dumps(identity(environ[ENVIRON_KEY])).encode()
        start_response("200 OK", [("content-type", "application/json")])
        return [body]

    return AkenerWSGIMiddleware(plain, verifier, scopes=[SCOPE])


def django_app(url: str, key: str) -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="django-test-" + "x" * 40,
            MIDDLEWARE=["akener_client.middleware.django.AkenerMiddleware"],
        )
        import django

        django.setup()
    settings.AKENER_URL, settings.AKENER_KEY = url, key
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _django_view(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse(identity(request.akener_key))


def _urlpatterns() -> list[Any]:
    try:
        from django.urls import path
    except ImportError:  # pragma: no cover -- the django extra is installed for the tests
        return []
    from akener_client.middleware.django import require_scopes

    return [path("whoami", require_scopes(SCOPE)(_django_view))]


urlpatterns = _urlpatterns()


# --- real servers -------------------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def served(kind: str, app: Any) -> Iterator[str]:
    """``app`` served on a free port by a real server; its base URL."""
    port = _port()
    if kind == "uvicorn":
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stop: Callable[[], None] = lambda: setattr(server, "should_exit", True)  # noqa: E731
    elif kind == "werkzeug":
        from werkzeug.serving import make_server as werkzeug_server

        wserver = werkzeug_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=wserver.serve_forever, daemon=True)
        thread.start()
        stop = wserver.shutdown
    else:
        sserver = make_server(
            "127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_Quiet
        )
        thread = threading.Thread(target=sserver.serve_forever, daemon=True)
        thread.start()

        def stop() -> None:
            sserver.shutdown()
            sserver.server_close()

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url + "/whoami", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{kind} did not start"
            time.sleep(0.02)
    try:
        yield url
    finally:
        stop()
        thread.join(timeout=5)


KINDS = {
    "fastapi": ("uvicorn", fastapi_app),
    "flask": ("werkzeug", flask_app),
    "wsgi": ("wsgiref", wsgi_app),
}


@contextmanager
def app_for(framework: str, url: str, key: str) -> Iterator[str]:
    """The framework's test app checking keys against akener at ``url``, served."""
    if framework == "django":
        with served("wsgiref", django_app(url, key)) as base:
            yield base
        return
    kind, build = KINDS[framework]
    verifier = Verifier(url, key, timeout=2)
    try:
        with served(kind, build(verifier)) as base:
            yield base
    finally:
        verifier.close()


FRAMEWORKS = ["fastapi", "flask", "wsgi", "django"]


def _error(answer: httpx.Response) -> str:
    code: str = answer.json()["error"]["code"]
    return code


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_middleware_answers_as_akener_does(server: Server, framework: str) -> None:
    verify_key = server.make_key("api_keys.verify")
    with AkenerClient(server.url, server.admin_key) as admin:
        good = admin.create_key(f"mw {framework} {time.monotonic_ns()}", [SCOPE], owner_id="acme")
        lacking = admin.create_key(f"mw lacking {time.monotonic_ns()}", ["reports.write"])
        limited = admin.create_key(
            f"mw limited {time.monotonic_ns()}",
            [SCOPE],
            rate_limits=[{"name": "minute", "limit": 1, "period_seconds": 60}],
        )
        off = admin.create_key(f"mw off {time.monotonic_ns()}", [SCOPE])
        admin.deactivate_key(off.id)
        assert good.key and lacking.key and limited.key and off.key
        # An akener from before the verify API named the owner answers without it.
        probe = admin.verify_key(good.key).key
        assert probe is not None
        owner = "acme" if probe.limited is not None else None

    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with app_for(framework, server.url, verify_key) as base, httpx.Client(base_url=base) as c:
        for _ in range(2):  # asked, then (where memory may answer) from memory
            answer = c.get("/whoami", headers=bearer(good.key))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "id": good.id,
                "name": good.name,
                "scopes": [SCOPE],
                "owner_id": owner,
            }
        for headers in ({}, {"Authorization": "Basic eDp5"}, bearer("akener_xyz"), bearer(off.key)):
            answer = c.get("/whoami", headers=headers)
            assert answer.status_code == 401, (headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert _error(answer) == "UNAUTHORIZED"
        answer = c.get("/whoami", headers=bearer("akener_" + "1" * 64))
        assert (answer.status_code, _error(answer)) == (401, "UNAUTHORIZED")
        answer = c.get("/whoami", headers=bearer(lacking.key))
        assert (answer.status_code, _error(answer)) == (403, "FORBIDDEN")
        assert c.get("/whoami", headers=bearer(limited.key)).status_code == 200
        answer = c.get("/whoami", headers=bearer(limited.key))
        assert (answer.status_code, _error(answer)) == (429, "RATE_LIMITED")
        assert int(answer.headers["retry-after"]) >= 1

    # akener out of reach, nothing in memory: 503, never the route.
    with app_for(framework, DEAD, verify_key) as base, httpx.Client(base_url=base) as c:
        answer = c.get("/whoami", headers=bearer(good.key))
        assert (answer.status_code, _error(answer)) == (503, "SERVICE_UNAVAILABLE")
