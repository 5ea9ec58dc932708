"""Each API operation once: how to ask (method, path, query, body) and how to read the answer.

``AkenerClient`` and ``AsyncAkenerClient`` send these calls; they differ only in how they wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from akener_client.models import (
    AuditEvent,
    CreatedKey,
    Credits,
    Delivery,
    Key,
    Owner,
    Page,
    RateLimitWindow,
    VerifyResult,
    Webhook,
    WebhookWithSecret,
)

T = TypeVar("T")
Json = Any


class _Unset:
    """The value of a PATCH field that is not sent (``None`` is sent, as ``null``: clear it)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

WindowsIn = Sequence[RateLimitWindow | Mapping[str, Any]]
CreditsIn = Credits | Mapping[str, Any] | None
TimeIn = datetime | str | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to akener and the function that reads its answer's JSON."""

    method: str
    path: str
    parse: Callable[[Json], T]
    params: Mapping[str, Any] | None = None
    body: Json = None
    has_body: bool = False


def segment(value: str) -> str:
    """A path segment, percent-encoded so an id cannot change the path."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _time(value: TimeIn) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("akener needs times with a time zone (e.g. datetime.now(UTC))")
        return value.isoformat()
    return value


def _windows(value: WindowsIn) -> list[Json]:
    return [w.to_json() if isinstance(w, RateLimitWindow) else dict(w) for w in value]


def _credits(value: CreditsIn) -> Json:
    if value is None:
        return None
    return value.to_json() if isinstance(value, Credits) else dict(value)


def _query(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def _nothing(_: Json) -> None:
    return None


def _key_page(data: Json) -> Page[Key]:
    return Page(tuple(Key.from_json(k) for k in data["items"]), data.get("next_cursor"))


def _audit_page(data: Json) -> Page[AuditEvent]:
    return Page(tuple(AuditEvent.from_json(e) for e in data["items"]), data.get("next_cursor"))


def _webhooks(data: Json) -> list[Webhook]:
    return [Webhook.from_json(w) for w in data["items"]]


def _deliveries(data: Json) -> list[Delivery]:
    return [Delivery.from_json(d) for d in data["items"]]


def _limits_body(
    body: dict[str, Any],
    *,
    owner_id: Any,
    rate_limits: Any,
    credits: Any,
    allowed_ips: Any,
) -> None:
    if owner_id is not UNSET:
        body["owner_id"] = owner_id
    if rate_limits is not UNSET:
        body["rate_limits"] = None if rate_limits is None else _windows(rate_limits)
    if credits is not UNSET:
        body["credits"] = _credits(credits)
    if allowed_ips is not UNSET:
        body["allowed_ips"] = None if allowed_ips is None else list(allowed_ips)


# --- keys ---------------------------------------------------------------------------------------


def list_keys(
    *,
    limit: int | None,
    cursor: str | None,
    status: str | None,
    q: str | None,
    expiry: str | None,
    scope: str | None,
    sort: str | None,
    owner_id: str | None,
) -> Call[Page[Key]]:
    """``GET /api/v1/keys``."""
    params = _query(
        limit=limit,
        cursor=cursor,
        status=status,
        q=q,
        expiry=expiry,
        scope=scope,
        sort=sort,
        owner_id=owner_id,
    )
    return Call("GET", "/api/v1/keys", _key_page, params)


def create_key(
    name: str,
    scopes: Iterable[str],
    *,
    expires_at: TimeIn,
    owner_id: str | None,
    rate_limits: WindowsIn | None,
    credits: CreditsIn,
    allowed_ips: Iterable[str] | None,
) -> Call[CreatedKey]:
    """``POST /api/v1/keys``."""
    body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
    if expires_at is not None:
        body["expires_at"] = _time(expires_at)
    _limits_body(
        body,
        owner_id=UNSET if owner_id is None else owner_id,
        rate_limits=UNSET if rate_limits is None else rate_limits,
        credits=UNSET if credits is None else credits,
        allowed_ips=UNSET if allowed_ips is None else allowed_ips,
    )
    return Call("POST", "/api/v1/keys", CreatedKey.from_json, body=body, has_body=True)


def get_key(key_id: str) -> Call[Key]:
    """``GET /api/v1/keys/{key_id}``."""
    return Call("GET", f"/api/v1/keys/{segment(key_id)}", Key.from_json)


def update_key(
    key_id: str,
    *,
    status: Any,
    name: Any,
    expires_at: Any,
    scopes: Any,
    owner_id: Any,
    rate_limits: Any,
    credits: Any,
    allowed_ips: Any,
) -> Call[Key]:
    """``PATCH /api/v1/keys/{key_id}``: only the fields given are sent."""
    body: dict[str, Any] = {}
    if status is not UNSET:
        body["status"] = status
    if name is not UNSET:
        body["name"] = name
    if expires_at is not UNSET:
        body["expires_at"] = _time(expires_at)
    if scopes is not UNSET:
        body["scopes"] = None if scopes is None else list(scopes)
    _limits_body(
        body, owner_id=owner_id, rate_limits=rate_limits, credits=credits, allowed_ips=allowed_ips
    )
    path = f"/api/v1/keys/{segment(key_id)}"
    return Call("PATCH", path, Key.from_json, body=body, has_body=True)


def delete_key(key_id: str) -> Call[None]:
    """``DELETE /api/v1/keys/{key_id}``."""
    return Call("DELETE", f"/api/v1/keys/{segment(key_id)}", _nothing)


def rotate_key(key_id: str, grace_period_seconds: int) -> Call[CreatedKey]:
    """``POST /api/v1/keys/{key_id}/rotate``."""
    body = {"grace_period_seconds": grace_period_seconds}
    path = f"/api/v1/keys/{segment(key_id)}/rotate"
    return Call("POST", path, CreatedKey.from_json, body=body, has_body=True)


def report_leaked(key_id: str, url: str | None) -> Call[Key]:
    """``POST /api/v1/keys/{key_id}/leaked``."""
    body = {} if url is None else {"url": url}
    path = f"/api/v1/keys/{segment(key_id)}/leaked"
    return Call("POST", path, Key.from_json, body=body, has_body=True)


def verify_key(
    key: str, scopes: Iterable[str], *, ip: str | None, cost: int | None
) -> Call[VerifyResult]:
    """``POST /api/v1/keys/verify``."""
    body: dict[str, Any] = {"key": key, "scopes": list(scopes)}
    if ip is not None:
        body["ip"] = ip
    if cost is not None:
        body["cost"] = cost
    return Call("POST", "/api/v1/keys/verify", VerifyResult.from_json, body=body, has_body=True)


def whoami() -> Call[Key]:
    """``GET /api/v1/whoami``."""
    return Call("GET", "/api/v1/whoami", Key.from_json)


# --- owners -------------------------------------------------------------------------------------


def _owner_page(data: Json) -> Page[Owner]:
    return Page(tuple(Owner.from_json(o) for o in data["items"]), data.get("next_cursor"))


def list_owners(*, limit: int | None, cursor: str | None) -> Call[Page[Owner]]:
    """``GET /api/v1/owners``."""
    return Call("GET", "/api/v1/owners", _owner_page, _query(limit=limit, cursor=cursor))


def get_owner(owner_id: str) -> Call[Owner]:
    """``GET /api/v1/owners/{owner_id}``."""
    return Call("GET", f"/api/v1/owners/{segment(owner_id)}", Owner.from_json)


def set_owner(owner_id: str, *, rate_limits: WindowsIn, credits: CreditsIn) -> Call[Owner]:
    """``PUT /api/v1/owners/{owner_id}``: the owner's whole shared limits."""
    body = {"rate_limits": _windows(rate_limits), "credits": _credits(credits)}
    path = f"/api/v1/owners/{segment(owner_id)}"
    return Call("PUT", path, Owner.from_json, body=body, has_body=True)


# --- audit --------------------------------------------------------------------------------------


def list_audit_events(
    *,
    limit: int | None,
    cursor: str | None,
    actor: str | None,
    action: str | None,
    target: str | None,
    since: TimeIn,
    until: TimeIn,
) -> Call[Page[AuditEvent]]:
    """``GET /api/v1/audit``."""
    params = _query(
        limit=limit,
        cursor=cursor,
        actor=actor,
        action=action,
        target=target,
        since=_time(since),
        until=_time(until),
    )
    return Call("GET", "/api/v1/audit", _audit_page, params)


# --- webhooks -----------------------------------------------------------------------------------


def list_webhooks() -> Call[list[Webhook]]:
    """``GET /api/v1/webhooks``."""
    return Call("GET", "/api/v1/webhooks", _webhooks)


def create_webhook(
    url: str, events: Iterable[str], description: str | None
) -> Call[WebhookWithSecret]:
    """``POST /api/v1/webhooks``."""
    body: dict[str, Any] = {"url": url, "events": list(events)}
    if description is not None:
        body["description"] = description
    return Call("POST", "/api/v1/webhooks", WebhookWithSecret.from_json, body=body, has_body=True)


def get_webhook(webhook_id: str) -> Call[Webhook]:
    """``GET /api/v1/webhooks/{webhook_id}``."""
    return Call("GET", f"/api/v1/webhooks/{segment(webhook_id)}", Webhook.from_json)


def update_webhook(
    webhook_id: str, *, url: str | None, events: Iterable[str] | None, description: str | None
) -> Call[Webhook]:
    """``PATCH /api/v1/webhooks/{webhook_id}``: only the fields given are sent."""
    body: dict[str, Any] = _query(url=url, description=description)
    if events is not None:
        body["events"] = list(events)
    path = f"/api/v1/webhooks/{segment(webhook_id)}"
    return Call("PATCH", path, Webhook.from_json, body=body, has_body=True)


def delete_webhook(webhook_id: str) -> Call[None]:
    """``DELETE /api/v1/webhooks/{webhook_id}``."""
    return Call("DELETE", f"/api/v1/webhooks/{segment(webhook_id)}", _nothing)


def rotate_webhook_secret(webhook_id: str, overlap_seconds: int | None) -> Call[WebhookWithSecret]:
    """``POST /api/v1/webhooks/{webhook_id}/rotate-secret``."""
    body = {} if overlap_seconds is None else {"overlap_seconds": overlap_seconds}
    path = f"/api/v1/webhooks/{segment(webhook_id)}/rotate-secret"
    return Call("POST", path, WebhookWithSecret.from_json, body=body, has_body=True)


def list_deliveries(webhook_id: str, limit: int | None) -> Call[list[Delivery]]:
    """``GET /api/v1/webhooks/{webhook_id}/deliveries``."""
    path = f"/api/v1/webhooks/{segment(webhook_id)}/deliveries"
    return Call("GET", path, _deliveries, _query(limit=limit))


def resend_delivery(webhook_id: str, delivery_id: str) -> Call[Delivery]:
    """``POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/resend``."""
    path = f"/api/v1/webhooks/{segment(webhook_id)}/deliveries/{segment(delivery_id)}/resend"
    return Call("POST", path, Delivery.from_json)


# Every operation of akener's API and the client method that performs it (on both clients).
# tests/test_openapi.py fails when a running server has an /api/v1 operation missing here.
# AHEAD: operations mapped before every server has them (the client asks; an older server 404s).
OPERATIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/keys"): "list_keys",
    ("POST", "/api/v1/keys"): "create_key",
    ("GET", "/api/v1/keys/{}"): "get_key",
    ("PATCH", "/api/v1/keys/{}"): "update_key",
    ("DELETE", "/api/v1/keys/{}"): "delete_key",
    ("POST", "/api/v1/keys/{}/rotate"): "rotate_key",
    ("POST", "/api/v1/keys/{}/leaked"): "report_leaked",
    ("POST", "/api/v1/keys/verify"): "verify_key",
    ("GET", "/api/v1/keys/changes"): "iter_changes",
    ("GET", "/api/v1/whoami"): "whoami",
    ("GET", "/api/v1/owners"): "list_owners",
    ("GET", "/api/v1/owners/{}"): "get_owner",
    ("PUT", "/api/v1/owners/{}"): "set_owner",
    ("GET", "/api/v1/audit"): "list_audit_events",
    ("GET", "/api/v1/webhooks"): "list_webhooks",
    ("POST", "/api/v1/webhooks"): "create_webhook",
    ("GET", "/api/v1/webhooks/{}"): "get_webhook",
    ("PATCH", "/api/v1/webhooks/{}"): "update_webhook",
    ("DELETE", "/api/v1/webhooks/{}"): "delete_webhook",
    ("POST", "/api/v1/webhooks/{}/rotate-secret"): "rotate_webhook_secret",
    ("GET", "/api/v1/webhooks/{}/deliveries"): "list_deliveries",
    ("POST", "/api/v1/webhooks/{}/deliveries/{}/resend"): "resend_delivery",
}

AHEAD: frozenset[tuple[str, str]] = frozenset(
    {("GET", "/api/v1/keys/changes"), ("GET", "/api/v1/owners")}
)
