"""What both clients share: the credential check, reading answers and errors, and SSE lines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from akener_client.errors import AkenerError, AkenerTransportError, FieldError, error_for
from akener_client.models import ServerEvent

T = TypeVar("T")

USER_AGENT = "akener-client/0.1.0"
DEFAULT_TIMEOUT = 10.0

# akener accepts nothing else; checking here fails early and keeps odd bytes out of headers.
_KEY_FORMAT = re.compile(r"akener_[0-9a-f]{64}")


def bearer(key: str) -> str:
    """The Authorization header's value for ``key``; the error never repeats the key."""
    if not isinstance(key, str) or _KEY_FORMAT.fullmatch(key) is None:
        raise ValueError("not an akener key: expected akener_ followed by 64 lowercase hex digits")
    return f"Bearer {key}"


def base_url(url: str) -> str:
    """akener's address without a trailing slash; it may carry a path prefix."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("akener's URL must start with http:// or https://")
    return url.rstrip("/")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: akener sends seconds, so this is some proxy's answer


def raise_for_error(response: httpx.Response, body: bytes) -> None:
    """Raise the matching ``AkenerAPIError`` unless ``response`` is a success (2xx).

    A redirect is an error too: the client does not follow one, so the key is never sent on.
    """
    if response.is_success:
        return
    code, message = f"HTTP_{response.status_code}", response.reason_phrase
    fields: tuple[FieldError, ...] = ()
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
        fields = tuple(
            FieldError(str(f["field"]), str(f["message"])) for f in error.get("fields") or ()
        )
    except (ValueError, KeyError, TypeError):
        pass  # not akener's error body (a proxy in between, say): keep the status
    raise error_for(
        response.status_code,
        code,
        message,
        fields=fields,
        retry_after=_retry_after(response),
    )


def read_answer(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """The parsed answer of a finished response, or the error it carries."""
    raise_for_error(response, response.content)
    try:
        if response.status_code == 204 or not response.content:
            return parse(None)
        return parse(response.json())
    except (ValueError, KeyError, TypeError) as exc:
        raise AkenerError(
            f"unexpected answer from akener ({response.status_code}): {type(exc).__name__}"
        ) from None


def transport_error(exc: httpx.TransportError) -> AkenerError:
    """A transport failure as this package's error (its message names no header)."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return AkenerTransportError(f"request to akener {kind}: {type(exc).__name__}: {exc}")


class SSEParser:
    """Turns the lines of a ``text/event-stream`` into events (the WHATWG rules, without retry)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerEvent | None:
        """Take one line (without its end); an event when the line ends one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: heartbeats may be sent this way
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None

    def _dispatch(self) -> ServerEvent | None:
        # Unlike a browser, an event with a name but no data is kept (``data`` None): a stream
        # may mark a state ("ready", "reset") by name alone.
        event, lines = self._event, self._data
        self._event, self._data = "", []
        if not lines and not event:
            return None
        parsed: Any = None
        if lines:
            text = "\n".join(lines)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        return ServerEvent(event=event or "message", data=parsed, id=self.last_id)
