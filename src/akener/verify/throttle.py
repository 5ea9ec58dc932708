"""Failed key checks per client address, so a flood of made-up keys cannot push the database.

Only checks that needed the database count: a key the cache already knows (valid or not) costs
nothing and is never throttled. An address that has had ``limit`` failed database checks within
``window`` seconds gets RateLimited for its next checks that would need the database, until the
window ends; keys it sends that are cached keep working. Addresses are held in a bounded LRU map,
so memory stays bounded whatever arrives. ``client_address`` says which address a request has.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

MAX_CLIENTS = 65_536

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``10.0.0.1, 192.168.0.0/16, ::1`` as networks; ValueError on anything else."""
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()
    )


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[bytes], proxies: Sequence[Network]
) -> str | None:
    """The client's address: the socket peer, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for v in forwarded_for for h in v.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


class FailureThrottle:
    """At most ``limit`` failed database checks per address per ``window`` seconds."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._by_client: OrderedDict[str, list[float]] = OrderedDict()  # [window start, count]

    def retry_after(self, client: str | None) -> int | None:
        """Seconds until ``client`` may need the database again; None when it may now."""
        if client is None or self.limit <= 0:
            return None
        slot = self._by_client.get(client)
        if slot is None or slot[1] < self.limit:
            return None
        left = slot[0] + self.window - self._clock()
        if left <= 0:
            del self._by_client[client]
            return None
        return max(1, math.ceil(left))

    def failed(self, client: str | None) -> None:
        """Count one failed database check by ``client``."""
        if client is None or self.limit <= 0:
            return
        now = self._clock()
        slot = self._by_client.get(client)
        if slot is None or now - slot[0] >= self.window:
            self._by_client[client] = [now, 1]
        else:
            slot[1] += 1
        self._by_client.move_to_end(client)
        if len(self._by_client) > self.max_clients:
            self._by_client.popitem(last=False)
