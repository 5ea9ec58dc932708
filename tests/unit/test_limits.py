"""The pure rules of akener.keys.limits and akener.verify.limiter."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from akener.keys import limits as lim
from akener.verify.limiter import Rule, WindowCounters, address_allowed

W = lim.Window


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval", "now", "last", "following"),
    [
        ("daily", "2026-12-31T23:59:59", "2026-12-31T00:00:00", "2027-01-01T00:00:00"),
        ("monthly", "2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("monthly", "2027-02-28T12:00:00", "2027-02-01T00:00:00", "2027-03-01T00:00:00"),
        ("monthly", "2027-03-01T00:00:00", "2027-03-01T00:00:00", "2027-04-01T00:00:00"),
    ],
)
def test_refill_boundaries_are_utc_midnight_and_the_first(
    interval: lim.Interval, now: str, last: str, following: str
) -> None:
    assert lim.last_boundary(interval, at(now)) == at(last)
    assert lim.next_boundary(interval, at(now)) == at(following)


def test_a_refill_sets_remaining_once_per_boundary() -> None:
    start = at("2026-12-01T00:00:00")
    assert lim.refilled(3, 100, "monthly", start, at("2026-12-31T23:59:59")) == (3, start)
    after = at("2027-01-01T00:00:00")
    assert lim.refilled(3, 100, "monthly", start, after) == (100, after)
    assert lim.refilled(40, 100, "monthly", after, at("2027-01-20T00:00:00")) == (40, after)
    assert lim.refilled(3, None, None, None, after) == (3, None)


def test_comparisons() -> None:
    minute = W("r", 100, 60)
    assert not lim.windows_loosened([minute], [W("r", 10, 3600)])
    assert lim.windows_loosened([minute], [W("r", 50, 30)])
    assert lim.windows_loosened([minute], [])
    assert not lim.windows_loosened([], [minute])
    some = lim.Credits(10, 10, "monthly")
    assert not lim.credits_added(None, some)
    assert lim.credits_added(some, None)
    assert lim.credits_added(some, lim.Credits(10, 10, "daily"))
    assert not lim.credits_added(some, lim.Credits(9))
    net = ipaddress.ip_network
    wide = (net("10.0.0.0/8"),)
    assert not lim.allowlist_widened(wide, (net("10.1.0.0/16"),))
    assert lim.allowlist_widened(wide, (net("2001:db8::/32"),))
    assert lim.allowlist_widened(wide, ())
    assert not lim.allowlist_widened((), wide)


def test_a_window_admits_exactly_its_limit_and_restarts_at_its_boundary() -> None:
    counters = WindowCounters()
    rules = (Rule("k:1", W("r", 2, 60)),)
    assert counters.take(rules, 120.5)[0] is None
    assert counters.take(rules, 150.0)[0] is None
    wait, states = counters.take(rules, 179.2)
    assert wait == 1 and states[0].remaining == 0
    assert counters.take(rules, 180.0)[0] is None
    counters.give_back(rules, 180.0)
    assert counters.take(rules, 181.0)[1][0].remaining == 1  # the given-back one is free


def test_counters_stay_bounded() -> None:
    counters = WindowCounters(max_counters=100)
    for i in range(1000):
        counters.take((Rule(f"k:{i}", W("r", 1, 60)),), 0.0)
    assert len(counters) == 100


def test_address_allowed() -> None:
    allowed = (ipaddress.ip_network("10.0.0.0/8"),)
    assert address_allowed((), None)
    assert address_allowed(allowed, "10.2.3.4")
    assert address_allowed(allowed, "::ffff:10.2.3.4")
    assert not address_allowed(allowed, "11.0.0.1")
    assert not address_allowed(allowed, None)
    assert not address_allowed(allowed, "not-an-address")
