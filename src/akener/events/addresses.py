"""Where webhooks may go: public addresses only, unless the operator allows private ones.

The check runs on the address a delivery actually connects to (resolved once, then connected to
by number), so a name that resolves to a public address when registered and to 127.0.0.1 when
delivered (DNS rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from akener.errors import InvalidInput

MAX_URL_LENGTH = 2000
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IpAddress) -> bool:
    """True for a globally routable unicast address.

    ``is_global`` is False for loopback, private (RFC 1918, fc00::/7), link-local, shared
    (100.64.0.0/10), unspecified, documentation and reserved ranges; IPv4-mapped IPv6 addresses
    (``::ffff:127.0.0.1``) are refused outright so they cannot smuggle a private IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return False
    return address.is_global and not address.is_multicast


def allowed(address: str, *, allow_private: bool) -> bool:
    """True when a delivery may connect to ``address`` (a literal IP)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return allow_private or is_public(ip)


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it is an http(s) URL a webhook may be registered at; InvalidInput otherwise."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise InvalidInput(
            "url must be an http(s) URL without spaces or control characters", field="url"
        )
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput("url has an invalid port", field="url") from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url must be an http:// or https:// URL with a host", field="url")
    if parts.username or parts.password:
        raise InvalidInput("url must not carry credentials", field="url")
    if parts.fragment:
        raise InvalidInput("url must not have a fragment", field="url")
    host = parts.hostname
    if not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidInput(_PRIVATE, field="url")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return url  # a name: checked again on every delivery, on the address it resolves to
        if not is_public(ip):
            raise InvalidInput(_PRIVATE, field="url")
    return url


_PRIVATE = (
    "url points at a loopback, private, link-local or otherwise non-public address; webhooks go"
    " to public addresses only (AKENER_WEBHOOKS_ALLOW_PRIVATE=true lifts this)"
)
