"""AkenerClient against a real akener server: keys, verify, whoami, owners, audit, errors."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from akener_client import (
    AkenerClient,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from akener_client.models import CreatedKey, Credits, RateLimitWindow, Refill
from tests.conftest import Server

KEY_FORMAT = re.compile(r"akener_[0-9a-f]{64}")


def unique(prefix: str = "client") -> str:
    """A key name no other test uses."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


@pytest.fixture
def admin(server: Server) -> Iterator[AkenerClient]:
    """A client holding every permission of akener's API."""
    with AkenerClient(server.url, server.admin_key) as client:
        yield client


def test_a_key_s_whole_life(admin: AkenerClient) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    created = admin.create_key(unique(), ["reports.read"], expires_at=expires)
    assert isinstance(created, CreatedKey)
    assert KEY_FORMAT.fullmatch(created.key)
    assert created.key not in repr(created)
    assert created.status == "ACTIVE" and created.active
    assert created.scopes == ("reports.read",)
    assert created.expires_at is not None and abs(created.expires_at - expires) < timedelta(1)
    assert created.masked_key.endswith(created.key[-4:]) and len(created.masked_key) == 71

    fetched = admin.get_key(created.id)
    assert fetched.id == created.id and fetched.name == created.name
    assert not hasattr(fetched, "key")

    assert admin.verify_key(created.key, ["reports.read"]).valid
    refused = admin.verify_key(created.key, ["reports.write"])
    assert (refused.valid, refused.code) == (False, "INSUFFICIENT_SCOPE")

    renamed = admin.update_key(created.id, name=created.name + " renamed", expires_at=None)
    assert renamed.name.endswith(" renamed") and renamed.expires_at is None
    assert renamed.scopes == ("reports.read",)  # not sent, so not changed

    assert admin.deactivate_key(created.id).status == "INACTIVE"
    assert admin.verify_key(created.key).code == "INACTIVE"
    assert admin.activate_key(created.id).status == "ACTIVE"
    assert admin.verify_key(created.key).code == "VALID"

    rotated = admin.rotate_key(created.id, grace_period_seconds=60)
    assert rotated.id == created.id and rotated.key != created.key
    assert rotated.previous_valid_until is not None
    assert admin.verify_key(rotated.key).valid and admin.verify_key(created.key).valid

    leaked = admin.report_leaked(created.id, url="https://example.com/paste/1")
    assert leaked.status == "INACTIVE"

    admin.delete_key(created.id)
    with pytest.raises(NotFoundError) as caught:
        admin.get_key(created.id)
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
    assert admin.verify_key(rotated.key).code == "NOT_FOUND"


def test_whoami_names_the_calling_key(server: Server, admin: AkenerClient) -> None:
    key = admin.create_key(unique("whoami"), ["api_keys.read"]).key
    with AkenerClient(server.url, key) as client:
        me = client.whoami()
    assert me.name.startswith("whoami ") and me.scopes == ("api_keys.read",)


def test_pages_follow_the_cursor_to_the_last_key(admin: AkenerClient) -> None:
    prefix = unique("paged")
    made = [admin.create_key(f"{prefix} {i}").id for i in range(5)]
    first = admin.list_keys(q=prefix, limit=2)
    assert len(first.items) == 2 and first.next_cursor is not None
    every = list(admin.iter_keys(q=prefix, page_size=2))
    assert [k.id for k in every] == made[::-1]  # newest first, none twice, none missing
    by_name = [k.name for k in admin.iter_keys(q=prefix, sort="name", page_size=3)]
    assert by_name == sorted(by_name)
    admin.deactivate_key(made[0])
    assert [k.id for k in admin.iter_keys(q=prefix, status="INACTIVE")] == [made[0]]


def test_limits_and_owners_round_trip(admin: AkenerClient) -> None:
    owner = uuid.uuid4().hex
    created = admin.create_key(
        unique(),
        owner_id=owner,
        rate_limits=[RateLimitWindow("requests", 100, 60)],
        credits=Credits(500, Refill(500, "monthly")),
        allowed_ips=["10.0.0.0/8"],
    )
    assert created.owner_id == owner
    assert created.rate_limits == (RateLimitWindow("requests", 100, 60),)
    assert created.credits is not None and created.credits.remaining == 500
    assert created.credits.refill == Refill(500, "monthly") and created.credits.refill_at
    assert created.allowed_ips == ("10.0.0.0/8",)
    assert admin.verify_key(created.key, ip="192.0.2.1").code == "IP_NOT_ALLOWED"
    checked = admin.verify_key(created.key, ip="10.1.2.3", cost=5)
    assert checked.valid and checked.limits is not None
    assert checked.limits.credits is not None and checked.limits.credits.remaining == 495

    shared = admin.set_owner(owner, rate_limits=[{"name": "all", "limit": 10, "period_seconds": 1}])
    assert shared.rate_limits == (RateLimitWindow("all", 10, 1),) and shared.key_count == 1
    assert admin.get_owner(owner) == shared
    assert [k.id for k in admin.iter_keys(owner_id=owner)] == [created.id]

    cleared = admin.update_key(created.id, rate_limits=[], credits=None, allowed_ips=[])
    assert (cleared.rate_limits, cleared.credits, cleared.allowed_ips) == ((), None, ())


def test_owners_are_listed_by_id_page_after_page(admin: AkenerClient) -> None:
    mine = sorted(uuid.uuid4().hex for _ in range(2))
    for owner in mine:
        admin.create_key(unique(), owner_id=owner)
    try:
        every = list(admin.iter_owners(page_size=1))
    except NotFoundError:
        pytest.skip("this server does not list owners yet")
    ids = [o.owner_id for o in every]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {o.owner_id: o.key_count for o in every if o.owner_id in mine} == dict.fromkeys(mine, 1)


def test_the_audit_log_pages_back_in_time(admin: AkenerClient) -> None:
    created = admin.create_key(unique())
    admin.deactivate_key(created.id)
    events = list(admin.iter_audit_events(target=created.id, page_size=1))
    assert [e.action for e in events] == ["key.deactivated", "key.created"]
    assert events[0].changes == {"status": {"before": "ACTIVE", "after": "INACTIVE"}}
    assert events[0].occurred_at.tzinfo is not None
    since = admin.list_audit_events(action="key.deactivated", since=events[0].occurred_at)
    assert created.id in {e.target_id for e in since.items}


def test_errors_carry_akener_s_code(server: Server, admin: AkenerClient) -> None:
    name = unique()
    admin.create_key(name)
    with pytest.raises(ConflictError) as conflict:
        admin.create_key(name)
    assert (conflict.value.status, conflict.value.code) == (409, "CONFLICT")

    with pytest.raises(ValidationError) as invalid:
        admin.create_key("ok", ["api_keys.reed"])
    assert invalid.value.code == "VALIDATION_ERROR" and invalid.value.fields
    assert "api_keys.read" in invalid.value.fields[0].message

    reader = admin.create_key(unique(), ["api_keys.read"]).key
    with AkenerClient(server.url, reader) as client, pytest.raises(PermissionDeniedError) as no:
        client.create_key(unique())
    assert (no.value.status, no.value.code) == (403, "FORBIDDEN")

    unknown = "akener_" + "0" * 64
    with AkenerClient(server.url, unknown) as client, pytest.raises(AuthenticationError) as who:
        client.whoami()
    assert (who.value.status, who.value.code) == (401, "UNAUTHORIZED")
    assert unknown not in str(who.value)


def test_a_rate_limited_caller_gets_retry_after(server: Server, admin: AkenerClient) -> None:
    limited = admin.create_key(
        unique(), ["api_keys.read"], rate_limits=[RateLimitWindow("requests", 1, 3600)]
    )
    with AkenerClient(server.url, limited.key) as client:
        client.whoami()
        with pytest.raises(RateLimitedError) as caught:
            client.whoami()
    assert caught.value.code == "RATE_LIMITED"
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 3600


def test_no_log_line_and_no_error_holds_a_key(
    server: Server, admin: AkenerClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at this level
    created = admin.create_key(unique(), ["reports.read"])
    with AkenerClient(server.url, created.key) as client:
        client.whoami()
        with pytest.raises(PermissionDeniedError) as denied:
            client.list_keys()
    admin.verify_key(created.key)
    logging.getLogger("test").info("%r %r %r", created, client, denied.value)
    assert "HTTP Request" in caplog.text  # the requests were logged ...
    for secret in (created.key, server.admin_key):
        assert secret not in caplog.text  # ... without a key
        assert secret[7:] not in str(denied.value)


def test_a_caller_out_of_credits_gets_usage_exceeded(server: Server, admin: AkenerClient) -> None:
    spent = admin.create_key(unique(), ["api_keys.read"], credits=Credits(1))
    with AkenerClient(server.url, spent.key) as client:
        client.whoami()
        with pytest.raises(RateLimitedError) as caught:
            client.whoami()
    assert (caught.value.status, caught.value.code) == (429, "USAGE_EXCEEDED")
