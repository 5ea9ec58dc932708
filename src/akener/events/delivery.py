"""One HTTP POST to a webhook receiver, connected only to an allowed address.

The name is resolved here, each address is checked (akener.events.addresses), and the request
goes to the chosen address by number with the original Host header and TLS server name, so the
address checked is the address connected to. Redirects are not followed, proxies from the
environment are not used, and one overall deadline bounds a slow receiver.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from akener.events.addresses import allowed


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: an HTTP status, or why there was none."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer: delivered."""
        return self.status is not None and 200 <= self.status < 300


class Poster:
    """Posts signed bodies; one per sender, sharing its connection pool."""

    def __init__(self, *, allow_private: bool, timeout: float) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )

    async def close(self) -> None:
        """Release the connections."""
        await self.client.aclose()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        """POST ``body`` to ``url``; never raises."""
        try:
            return await asyncio.wait_for(self._post(url, headers, body), self.timeout)
        except TimeoutError:
            return Outcome(None, f"no answer within {self.timeout:g}s")
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:300])
        except OSError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:300])

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [str(info[4][0]) for info in infos]
        chosen = next((a for a in addresses if allowed(a, allow_private=self.allow_private)), None)
        if chosen is None:
            return Outcome(None, f"{host} resolves to no public address; not sent")
        literal = f"[{chosen}]" if ":" in chosen else chosen
        target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        sent = {**headers, "Host": parts.netloc, "Content-Type": "application/json"}
        async with self.client.stream(
            "POST", target, content=body, headers=sent, extensions=extensions
        ) as response:
            # The answer's body is never read: a receiver cannot make akener hold a big one.
            return Outcome(response.status_code, None if response.is_success else "not 2xx")
