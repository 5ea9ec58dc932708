"""What every middleware shares: reading the Bearer credential and shaping refusals."""

from __future__ import annotations

import json
from collections.abc import Iterable

from akener_client.verifier import Verification

INVALID = "invalid API key"
MISSING = "missing or malformed Authorization header; send 'Authorization: Bearer <key>'"

_BY_CODE = {
    "INSUFFICIENT_SCOPE": (403, "FORBIDDEN", "this key lacks a scope this route needs"),
    "IP_NOT_ALLOWED": (403, "IP_NOT_ALLOWED", "this key may not be used from this address"),
    "RATE_LIMITED": (429, "RATE_LIMITED", "this key's rate limit is reached"),
    "USAGE_EXCEEDED": (429, "USAGE_EXCEEDED", "this key has no credits left"),
    "UNAVAILABLE": (503, "SERVICE_UNAVAILABLE", "cannot check the key now; try again"),
}


def credential(values: Iterable[str | None]) -> str | None:
    """The key of exactly one ``Authorization: Bearer <key>`` header value; None otherwise."""
    found = [v for v in values if v is not None]
    if len(found) != 1:
        return None
    parts = found[0].split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def refusal(result: Verification | None) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, JSON body and headers of the answer to a refused request (None: no key)."""
    if result is None:
        status, code, message = 401, "UNAUTHORIZED", MISSING
    else:
        status, code, message = _BY_CODE.get(result.code, (401, "UNAUTHORIZED", INVALID))
    headers = [("content-type", "application/json")]
    if status == 401:
        headers.append(("www-authenticate", "Bearer"))
    if status == 429 and result is not None and result.retry_after is not None:
        headers.append(("retry-after", str(max(1, round(result.retry_after)))))
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, body, headers
