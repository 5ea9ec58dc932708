"""Failed-check throttle and client address resolution (akener.verify.throttle)."""

from __future__ import annotations

import pytest

from akener.verify.throttle import FailureThrottle, client_address, parse_networks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_throttled_for_the_rest_of_its_window() -> None:
    clock = Clock()
    throttle = FailureThrottle(3, 10.0, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("a") is None
        throttle.failed("a")
    assert throttle.retry_after("a") == 10
    assert throttle.retry_after("b") is None  # per address
    clock.now += 9.5
    assert throttle.retry_after("a") == 1
    clock.now += 0.5
    assert throttle.retry_after("a") is None  # the window is over


def test_no_limit_and_no_address_are_never_throttled() -> None:
    off = FailureThrottle(0, 10.0)
    for _ in range(10):
        off.failed("a")
    assert off.retry_after("a") is None
    on = FailureThrottle(1, 10.0)
    on.failed(None)
    assert on.retry_after(None) is None


def test_memory_is_bounded_whatever_the_number_of_addresses() -> None:
    throttle = FailureThrottle(1, 10.0, max_clients=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._by_client) == 100


PROXIES = parse_networks("10.0.0.0/8, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.1", [b"203.0.113.9"], "192.0.2.1"),  # untrusted peer: its header is ignored
        ("10.0.0.2", [b"203.0.113.9"], "203.0.113.9"),
        ("10.0.0.2", [b"198.51.100.1, 203.0.113.9, 10.0.0.7"], "203.0.113.9"),  # right-most
        ("10.0.0.2", [b"198.51.100.1", b"203.0.113.9"], "203.0.113.9"),  # two headers
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", [b"10.0.0.3"], "10.0.0.3"),  # only proxies: the first of them
        ("::1", [b"2001:db8::5"], "2001:db8::5"),
        (None, [b"203.0.113.9"], None),
    ],
)
def test_client_address(peer: str | None, forwarded: list[bytes], expected: str | None) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_proxies_setting_refuses_anything_but_addresses() -> None:
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, proxy.example")
    assert parse_networks("") == ()
