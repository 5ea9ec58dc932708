"""GitHub secret-scanning partner reports: signature check and the feedback answer.

GitHub signs each report's raw body with ECDSA P-256 / SHA-256 and names the key in
``Github-Public-Key-Identifier``; the signature (base64 DER) is in ``Github-Public-Key-Signature``.
The public keys are published as JSON (``{"public_keys": [{"key_identifier", "key"}]}``). akener
caches them and fetches again on an unknown identifier at most once a minute, so a stream of
made-up identifiers cannot make it call out at will. ``AKENER_GITHUB_SCANNING_KEYS_FILE`` reads
the same JSON from a file instead (offline installations, tests).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy.ext.asyncio import AsyncSession

from akener.errors import InvalidInput
from akener.keys.peppers import Peppers
from akener.leaks.service import look_up, record_leak

REFETCH_SECONDS = 60.0
MAX_TOKENS = 1000
MAX_FIELD = 2000


class GitHubKeys:
    """GitHub's secret-scanning public keys, by identifier."""

    def __init__(self, url: str, file: str | None, *, timeout: float = 5.0) -> None:
        self.url = url
        self.file = file
        self.timeout = timeout
        self.keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self.fetched_at = -REFETCH_SECONDS
        self.fetches = 0
        self._lock = asyncio.Lock()

    async def key(self, identifier: str) -> ec.EllipticCurvePublicKey | None:
        """The key named ``identifier``, fetching the list again if allowed."""
        if identifier not in self.keys:
            async with self._lock:
                if (
                    identifier not in self.keys
                    and time.monotonic() - self.fetched_at >= REFETCH_SECONDS
                ):
                    self.fetched_at = time.monotonic()
                    self.fetches += 1
                    # On failure keep what we had; the next refetch is a minute away.
                    with contextlib.suppress(OSError, ValueError, KeyError, httpx.HTTPError):
                        self.keys = parse_keys(await self._read())
        return self.keys.get(identifier)

    async def _read(self) -> bytes:
        if self.file:
            return await asyncio.to_thread(Path(self.file).read_bytes)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            answer = await client.get(self.url)
            answer.raise_for_status()
            return answer.content

    async def verify(self, identifier: str, signature: str, body: bytes) -> bool:
        """True when ``signature`` is the named GitHub key's signature of ``body``."""
        if not identifier or len(identifier) > 200 or not signature or len(signature) > 400:
            return False
        public = await self.key(identifier)
        if public is None:
            return False
        try:
            public.verify(
                base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def parse_keys(raw: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-256 keys of a published key list."""
    found = {}
    for item in json.loads(raw).get("public_keys", []):
        public = load_pem_public_key(str(item["key"]).encode())
        if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
            found[str(item["key_identifier"])] = public
    return found


def parse_report(body: bytes) -> list[dict[str, str]]:
    """The report's items; InvalidInput for anything but the partner-program shape."""
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(data, list) or not data or len(data) > MAX_TOKENS:
        raise InvalidInput(f"the body must be a JSON array of 1 to {MAX_TOKENS} matches")
    items = []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            raise InvalidInput("each match needs a string token")
        items.append(
            {
                name: str(entry.get(name) or "")[:MAX_FIELD]
                for name in ("token", "type", "url", "source")
            }
        )
    return items


async def handle_report(
    session: AsyncSession,
    peppers: Peppers,
    items: list[dict[str, str]],
    *,
    on_leak: str,
    now: datetime,
    client: str | None,
) -> list[dict[str, Any]]:
    """Act on each reported token of this installation; the partner-program feedback answer
    (``token_hash`` is the SHA-256 of the token: the plaintext is never echoed)."""
    answer = []
    for item in items:
        token = item["token"]
        found = await look_up(session, peppers, token, now)
        if found.key is not None:
            await record_leak(
                session,
                found.key,
                actor="github",
                url=item["url"] or "reported by GitHub",
                source=f"github secret scanning ({item['source'] or 'content'})",
                on_leak=on_leak,
                client=client,
                now=now,
            )
        answer.append(
            {
                "token_hash": hashlib.sha256(token.encode("utf-8", "replace")).hexdigest(),
                "token_type": "".join(c for c in item["type"] if c.isprintable())[:100],
                "label": "true_positive" if found.key is not None else "false_positive",
            }
        )
    return answer
