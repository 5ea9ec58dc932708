"""GitHub secret-scanning reports: signed with a test ECDSA key, served from a local key list."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from akener.app import AkenerApp
from akener.audit.models import AuditEvent
from akener.events.models import OutboxEvent
from akener.keys.models import ApiKey
from akener.settings import Settings
from tests.factories import make_key

PATH = "/hooks/github/secret-scanning"
KEY_ID = "test-key-1"


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def signer() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _sign(key: ec.EllipticCurvePrivateKey, body: bytes, ident: str = KEY_ID) -> dict[str, str]:
    signature = key.sign(body, ec.ECDSA(hashes.SHA256()))
    return {
        "Github-Public-Key-Identifier": ident,
        "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
        "Content-Type": "application/json",
    }


@pytest.fixture
def key_list(signer: ec.EllipticCurvePrivateKey) -> bytes:
    return json.dumps(
        {"public_keys": [{"key_identifier": KEY_ID, "key": _pem(signer), "is_current": True}]}
    ).encode()


@pytest.fixture
def key_server(key_list: bytes):  # type: ignore[no-untyped-def]
    """A local server publishing the test key list; counts how often it is asked."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(key_list)))
            self.end_headers()
            self.wfile.write(key_list)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys", hits
    server.shutdown()
    server.server_close()


@pytest.fixture
async def github_app(settings: Settings, key_server) -> AsyncIterator[AkenerApp]:  # type: ignore[no-untyped-def]
    app = AkenerApp(settings.model_copy(update={"github_scanning_keys_url": key_server[0]}))
    async with app.running():
        yield app


@pytest.fixture
async def hook(github_app: AkenerApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=github_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as client:
        yield client


def _report(*tokens: str) -> bytes:
    return json.dumps(
        [
            {
                "token": t,
                "type": "akener_api_key",
                "url": "https://github.com/o/r/blob/x/a.py",
                "source": "content",
            }
            for t in tokens
        ]
    ).encode()


async def test_a_reported_live_key_is_deactivated_audited_and_answered_by_hash(
    hook: httpx.AsyncClient, github_app: AkenerApp, signer: ec.EllipticCurvePrivateKey
) -> None:
    row, plaintext = await make_key(github_app.runtime, "leaky")
    stranger = "akener_" + "ab" * 32
    body = _report(plaintext, stranger)
    answer = await hook.post(PATH, content=body, headers=_sign(signer, body))
    assert answer.status_code == 200, answer.text
    assert plaintext not in answer.text
    assert answer.json() == [
        {
            "token_hash": hashlib.sha256(plaintext.encode()).hexdigest(),
            "token_type": "akener_api_key",
            "label": "true_positive",
        },
        {
            "token_hash": hashlib.sha256(stranger.encode()).hexdigest(),
            "token_type": "akener_api_key",
            "label": "false_positive",
        },
    ]
    again = await hook.post(PATH, content=body, headers=_sign(signer, body))  # a replay
    assert again.status_code == 200
    async with github_app.runtime.sessionmaker() as session:
        key = await session.get(ApiKey, row.id)
        audits = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "key.leaked"))
        ).all()
        events = (await session.scalars(select(OutboxEvent.type))).all()
    assert key is not None and key.status == "INACTIVE"
    assert len(audits) == 1 and audits[0].actor == "github"
    assert "github.com/o/r" in json.dumps(audits[0].changes)
    assert plaintext not in json.dumps(audits[0].changes)
    assert events.count("key.leaked") == 1


@pytest.mark.parametrize("case", ["tampered", "unknown_id", "wrong_key", "missing", "garbage"])
async def test_a_bad_signature_is_401_and_changes_nothing(
    hook: httpx.AsyncClient, github_app: AkenerApp, signer: ec.EllipticCurvePrivateKey, case: str
) -> None:
    row, plaintext = await make_key(github_app.runtime, "leaky")
    body = _report(plaintext)
    headers = _sign(signer, body)
    if case == "tampered":
        body = body.replace(b"a.py", b"b.py")
    elif case == "unknown_id":
        headers = _sign(signer, body, ident="nope")
    elif case == "wrong_key":
        headers = _sign(ec.generate_private_key(ec.SECP256R1()), body)
    elif case == "missing":
        headers = {"Content-Type": "application/json"}
    else:
        headers["Github-Public-Key-Signature"] = "\x00not base64"
    answer = await hook.post(PATH, content=body, headers=headers)
    assert answer.status_code == 401
    async with github_app.runtime.sessionmaker() as session:
        key = await session.get(ApiKey, row.id)
    assert key is not None and key.status == "ACTIVE"


async def test_unknown_identifiers_refetch_the_keys_at_most_once_a_minute(
    hook: httpx.AsyncClient,
    key_server,
    signer: ec.EllipticCurvePrivateKey,  # type: ignore[no-untyped-def]
) -> None:
    body = _report("akener_" + "cd" * 32)
    for n in range(20):
        await hook.post(PATH, content=body, headers=_sign(signer, body, ident=f"made-up-{n}"))
    assert len(key_server[1]) == 1


async def test_huge_or_odd_bodies_are_refused(
    hook: httpx.AsyncClient, signer: ec.EllipticCurvePrivateKey
) -> None:
    huge = b"[" + b'{"token":"x"},' * 20_000 + b'{"token":"x"}]'
    assert (await hook.post(PATH, content=huge, headers=_sign(signer, huge))).status_code == 413
    for body in (b"{}", b"[]", b"not json", b'[{"token": 5}]', b"[\x00]"):
        answer = await hook.post(PATH, content=body, headers=_sign(signer, body))
        assert answer.status_code == 422, body
    nul = json.dumps([{"token": "akener_\x00", "type": "t\x00", "url": "u\x00"}]).encode()
    answer = await hook.post(PATH, content=nul, headers=_sign(signer, nul))
    assert answer.status_code == 200 and answer.json()[0]["label"] == "false_positive"


async def test_keys_can_come_from_a_local_file(
    settings: Settings, key_list: bytes, tmp_path: Path, signer: ec.EllipticCurvePrivateKey
) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(key_list)
    app = AkenerApp(
        settings.model_copy(
            update={
                "github_scanning_keys_file": str(path),
                "github_scanning_keys_url": "http://0.0.0.0:9/",
            }
        )
    )
    async with app.running():
        _, plaintext = await make_key(app.runtime, "k")
        body = _report(plaintext)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            answer = await client.post(PATH, content=body, headers=_sign(signer, body))
    assert answer.status_code == 200 and answer.json()[0]["label"] == "true_positive"


async def test_a_leaked_key_still_presented_is_recorded_once_an_hour_with_the_client(
    hook: httpx.AsyncClient, github_app: AkenerApp
) -> None:
    row, plaintext = await make_key(github_app.runtime, "leaky")
    _, admin = await make_key(github_app.runtime, "admin")
    reported = await hook.post(
        f"/api/v1/keys/{row.id}/leaked",
        json={"url": "https://paste.example/x"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert reported.status_code == 200 and reported.json()["status"] == "INACTIVE"
    for _ in range(5):
        answer = await hook.get("/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"})
        assert answer.status_code == 401
    refusals = github_app.runtime.verifier.refusals
    assert refusals is not None
    assert await refusals.flush() == 1
    for _ in range(3):
        await hook.get("/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"})
    assert await refusals.flush() == 0
    async with github_app.runtime.sessionmaker() as session:
        audits = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "key.refused"))
        ).all()
        events = (await session.scalars(select(OutboxEvent.type))).all()
    assert len(audits) == 1 and audits[0].client == "127.0.0.1"
    assert events.count("key.refused") == 1 and events.count("key.leaked") == 1


async def test_a_key_may_report_itself_and_others_need_api_keys_write(
    hook: httpx.AsyncClient, github_app: AkenerApp
) -> None:
    row, plaintext = await make_key(github_app.runtime, "self", scopes=[])
    other, _ = await make_key(github_app.runtime, "other")
    auth = {"Authorization": f"Bearer {plaintext}"}
    assert (
        await hook.post(f"/api/v1/keys/{other.id}/leaked", json={}, headers=auth)
    ).status_code == 403
    mine = await hook.post(f"/api/v1/keys/{row.id}/leaked", json={"url": "u\x00x"}, headers=auth)
    assert mine.status_code == 200 and mine.json()["status"] == "INACTIVE"


async def test_on_leak_notify_keeps_the_key_on_but_records_and_announces(
    settings: Settings,
    key_server,
    signer: ec.EllipticCurvePrivateKey,  # type: ignore[no-untyped-def]
) -> None:
    app = AkenerApp(
        settings.model_copy(update={"github_scanning_keys_url": key_server[0], "on_leak": "notify"})
    )
    async with app.running():
        row, plaintext = await make_key(app.runtime, "noisy")
        body = _report(plaintext)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            answer = await client.post(PATH, content=body, headers=_sign(signer, body))
        assert answer.json()[0]["label"] == "true_positive"
        async with app.runtime.sessionmaker() as session:
            key = await session.get(ApiKey, row.id)
            leaked = await session.scalar(
                select(OutboxEvent).where(OutboxEvent.type == "key.leaked")
            )
    assert key is not None and key.status == "ACTIVE"
    assert leaked is not None and leaked.payload["data"]["deactivated"] is False
