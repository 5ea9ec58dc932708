"""Hostile and bulk data for the dashboard's layout tests: long names, many scopes, 10,000 keys."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from akener.audit.models import AuditEvent
from akener.keys.models import ApiKey
from akener.keys.tokens import generate_key, mask
from akener.verify.models import KeyRefusal, KeyUsage

# 100 characters without a space: the longest name a key may have.
LONG_NAME = (
    "Nightly-Export-To-The-Data-Warehouse-Of-The-Accounting-Department-For-Quarterly-Reports"
)
MANY_SCOPES = [f"incidents.region-{n:02d}.write" for n in range(14)]


def long_name(tag: str) -> str:
    """A 100-character name without spaces that ends in ``tag``."""
    return (LONG_NAME + "x" * 100)[: 100 - len(tag)] + tag


def _row(name: str, created: datetime, **values: Any) -> dict[str, Any]:
    return {
        "id": secrets.token_hex(16),
        "name": name,
        "digest": secrets.token_hex(32),
        "pepper_version": 1,
        "masked_key": mask(generate_key()),
        "status": "ACTIVE",
        "scopes": [],
        "suspended_scopes": [],
        "created_at": created,
        "created_by": "cli",
        "request_count": 0,
        **values,
    }


async def add_bulk(session: Any, count: int, *, prefix: str = "bulk") -> None:
    """``count`` keys inserted in batches (no digest of any real key: they only fill the list)."""
    start = datetime.now(UTC) - timedelta(days=400)
    batch: list[dict[str, Any]] = []
    for n in range(count):
        values: dict[str, Any] = {}
        if n % 7 == 0:
            values["status"] = "INACTIVE"
        if n % 11 == 0:
            values["expires_at"] = start + timedelta(days=n % 500)
        if n % 5 == 0:
            values["scopes"] = ["deploys.write"]
        if n % 3 == 0:
            values["last_used_at"] = start + timedelta(minutes=n)
        batch.append(_row(f"{prefix}-{n:06d}", start + timedelta(seconds=n), **values))
        if len(batch) == 1000:
            await session.execute(insert(ApiKey), batch)
            batch = []
    if batch:
        await session.execute(insert(ApiKey), batch)


async def add_hostile(session: Any) -> dict[str, str]:
    """Keys that broke the layout (issue 12), newest first in the table; returns their ids."""
    now = datetime.now(UTC)
    rows = {
        "expired": _row(
            long_name("-expired"), now - timedelta(minutes=5), expires_at=now - timedelta(days=1)
        ),
        "soon": _row(
            long_name("-soon"), now - timedelta(minutes=4),
            expires_at=now + timedelta(days=6, hours=23), scopes=MANY_SCOPES,
            last_used_at=now - timedelta(seconds=20),
        ),
        "inactive": _row(
            long_name("-inactive"), now - timedelta(minutes=3), status="INACTIVE",
            scopes=MANY_SCOPES,
        ),
        "used": _row(
            long_name("-used"), now - timedelta(minutes=2), last_used_at=now - timedelta(seconds=5),
            expires_at=now + timedelta(hours=20),
        ),
    }  # fmt: skip
    await session.execute(insert(ApiKey), list(rows.values()))
    today = date.today()
    usage = [
        {"key_id": rows[name]["id"], "day": today - timedelta(days=d), "count": 1000 * (d % 9) + 7}
        for name in ("soon", "used")
        for d in range(90)
    ]
    await session.execute(insert(KeyUsage), usage)
    # Refusals on some days, so the stacked charts, their legend and tables are checked too.
    reasons = ("RATE_LIMITED", "USAGE_EXCEEDED", "IP_NOT_ALLOWED", "INSUFFICIENT_SCOPE")
    refused = [
        {
            "key_id": rows[name]["id"],
            "day": today - timedelta(days=d),
            "reason": reasons[d % len(reasons)],
            "count": 300 * (d % 5) + 1,
        }
        for name in ("soon", "used")
        for d in range(0, 90, 3)
    ]
    await session.execute(insert(KeyRefusal), refused)
    long_change = "x" * 400
    events = [
        {
            "occurred_at": now - timedelta(seconds=n),
            "actor": "cli",
            "action": "key.updated",
            "target_type": "key",
            "target_id": rows["soon"]["id"],
            "target_name": rows["soon"]["name"],
            "client": "cli",
            "changes": {
                "scopes": {"before": MANY_SCOPES[:3], "after": MANY_SCOPES},
                "name": {"before": long_change[:100], "after": rows["soon"]["name"]},
            },
        }
        for n in range(60)
    ]
    await session.execute(insert(AuditEvent), events)
    await session.execute(
        update(ApiKey).where(ApiKey.id == rows["soon"]["id"]).values(request_count=9)
    )
    return {name: row["id"] for name, row in rows.items()}


async def add_hostile_accounts(session: Any, secret: bytes) -> dict[str, str]:
    """A user, a role and a webhook with the longest names they may have; returns their ids."""
    from akener.accounts.models import Role, User
    from akener.accounts.permissions import ALL_PERMISSIONS
    from akener.events.models import WebhookEndpoint
    from akener.events.sealing import SecretBox

    role = Role(
        name=long_name("-role")[:50], description=LONG_NAME, builtin=False,
        permissions=[*ALL_PERMISSIONS, *MANY_SCOPES],
    )  # fmt: skip
    user = User(
        email=("a" * 64) + "@" + "departments-of-accounting." * 6 + "example.com",
        display_name=long_name("-user"), password_hash="!", roles=[role],
    )  # fmt: skip
    sealed, version = SecretBox.from_secrets({1: secret}, 1).seal("whsec_" + "A" * 32)
    hook = WebhookEndpoint(
        # Only an event nothing in these tests causes: the sender never tries this address.
        url="https://receiver.example.com/" + "very-long-path-segment/" * 40 + "akener-events",
        events=["key.leaked"], description=LONG_NAME * 3, sealed_secret=sealed,
        secret_version=version, created_by="cli",
    )  # fmt: skip
    session.add_all([role, user, hook])
    await session.flush()
    return {"user": user.id, "role": role.id, "webhook": hook.id}
