"""Expiry and grace choices from the dashboard's forms, times said relative to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from akener.errors import InvalidInput
from akener.keys.models import ApiKey
from akener.web.lifecycle import (
    expires_soon,
    expiry_from_form,
    grace_choices,
    grace_from_form,
    key_state,
    relative,
)
from akener.web.templating import audit_value

NOW = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(("choice", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
def test_presets_count_days_from_now(choice: str, days: int) -> None:
    assert expiry_from_form(choice, "", NOW) == NOW + timedelta(days=days)


@pytest.mark.parametrize("choice", ["", "never"])
def test_never(choice: str) -> None:
    assert expiry_from_form(choice, "2030-01-01", NOW) is None  # the date is ignored


def test_custom_date_means_midnight_utc_that_day() -> None:
    assert expiry_from_form("custom", " 2026-12-24 ", NOW) == datetime(2026, 12, 24, tzinfo=UTC)
    assert expiry_from_form("custom", "2026-11-30", NOW) == datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("choice", "custom", "field", "words"),
    [
        ("custom", "2026-11-29", "expires_on", "after 2026-11-29"),  # today: already started
        ("custom", "2020-01-01", "expires_on", "in the future"),
        ("custom", "", "expires_on", "Pick the expiry date"),
        ("custom", "29/11/2027", "expires_on", "a date such as"),
        ("custom", "2027-02-30", "expires_on", "a date such as"),
        ("14", "", "expires_in", "Choose one of the expiry options"),
        ("30", "", "expires_in", "Choose one of the expiry options"),  # a bare number: no unit
        ("14d", "", "expires_in", "Choose one of the expiry options"),
        ("-7", "", "expires_in", "Choose one of the expiry options"),
        ("forever", "", "expires_in", "Choose one of the expiry options"),
    ],
)
def test_bad_expiry_choices_name_the_field(
    choice: str, custom: str, field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        expiry_from_form(choice, custom, NOW)
    assert caught.value.field == field
    assert words in caught.value.message


def _key(expires_at: datetime | None, status: str = "ACTIVE") -> ApiKey:
    return ApiKey(name="k", status=status, expires_at=expires_at)


def test_grace_choices_past_the_expiry_are_not_allowed() -> None:
    key = _key(NOW + timedelta(hours=24))
    allowed = {c.seconds: c.allowed for c in grace_choices(key, NOW)}
    assert allowed == {0: True, 3600: True, 86400: True, 604800: False}
    assert all(c.allowed for c in grace_choices(_key(None), NOW))


@pytest.mark.parametrize("value", ["0", "3600", "86400", "604800"])
def test_offered_grace_periods_are_accepted(value: str) -> None:
    assert grace_from_form(value) == int(value)


@pytest.mark.parametrize("value", ["", "5", "-1", "3600.0", "1e3", "604801", "two"])
def test_other_grace_periods_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        grace_from_form(value)
    assert caught.value.field == "grace_period_seconds"


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(days=3, hours=5), "in 3 days"),
        (timedelta(days=1), "in 1 day"),
        (timedelta(hours=2, minutes=59), "in 2 hours"),
        (timedelta(minutes=1), "in 1 minute"),
        (timedelta(seconds=20), "in less than a minute"),
        (timedelta(0), "in less than a minute"),
        (-timedelta(seconds=20), "less than a minute ago"),
        (-timedelta(minutes=5), "5 minutes ago"),
        (-timedelta(days=2, hours=1), "2 days ago"),
    ],
)
def test_relative(delta: timedelta, words: str) -> None:
    assert relative(NOW + delta, NOW) == words


def test_key_state_and_expiring_soon() -> None:
    assert key_state(_key(None), NOW) == "Active"
    assert key_state(_key(None, "INACTIVE"), NOW) == "Inactive"
    assert key_state(_key(NOW), NOW) == "Expired"  # at the instant
    assert key_state(_key(NOW - timedelta(days=1), "INACTIVE"), NOW) == "Expired"
    assert expires_soon(_key(NOW + timedelta(days=6, hours=23)), NOW)
    assert not expires_soon(_key(NOW + timedelta(days=7)), NOW)
    assert not expires_soon(_key(NOW + timedelta(days=1), "INACTIVE"), NOW)
    assert not expires_soon(_key(NOW - timedelta(seconds=1)), NOW)
    assert not expires_soon(_key(None), NOW)


@pytest.mark.parametrize(
    ("value", "field", "shown"),
    [
        (None, "", "—"),
        ([], "scopes", "—"),
        (["a.read", "b.write"], "scopes", "a.read, b.write"),
        (True, "", "yes"),
        ("ACTIVE", "status", "ACTIVE"),
        ("2026-12-01T00:00:00+00:00", "expires_at", "2026-12-01 00:00 UTC"),
        ("akener_" + "*" * 60 + "ab12", "masked_key", "…ab12"),
        ({"x": 1}, "", '{"x": 1}'),
    ],
)
def test_audit_values_read_well(value: object, field: str, shown: str) -> None:
    assert audit_value(value, field) == shown
