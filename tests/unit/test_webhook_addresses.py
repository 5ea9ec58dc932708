"""Which addresses webhooks may reach, and which URLs may be registered."""

from __future__ import annotations

import ipaddress

import pytest

from akener.errors import InvalidInput
from akener.events.addresses import allowed, check_url, is_public
from akener.events.sender import RETRY_SCHEDULE, next_attempt
from akener.leaks.scan import find_in_bytes


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.0.1", "100.64.0.1", "100.127.255.254",
        "169.254.169.254", "0.0.0.0", "224.0.0.1",  # noqa: S104
        "255.255.255.255", "::1", "::", "fe80::1",
        "fc00::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "192.0.2.1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not allowed(address, allow_private=False)
    assert allowed(address, allow_private=True)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert allowed(address, allow_private=False)


def test_garbage_is_never_an_address() -> None:
    assert not allowed("not-an-ip", allow_private=True)


@pytest.mark.parametrize("url", ["https://example.com/hook", "http://93.184.216.34:8080/x?y=1"])
def test_public_urls_register(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://[::ffff:10.0.0.1]/", "javascript:alert(1)", "http://h:99999/"],
)
def test_bad_urls_do_not_register(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=False)


def test_the_retry_schedule_ends() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_attempt(1, now) == now + RETRY_SCHEDULE[0]
    assert next_attempt(len(RETRY_SCHEDULE) + 1, now) is None


def test_scanner_finds_exact_keys_with_line_numbers() -> None:
    key = "akener_" + "0123456789abcdef" * 4
    data = f"a\nb {key}\n{key}f\nakener_{'A' * 64}\n\x00{key}".encode()
    found = [(f.line, f.key) for f in find_in_bytes(data, "x")]
    assert found == [(2, key), (5, key)]
