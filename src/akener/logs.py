"""Structured (JSON lines) logging that never writes a key or an Authorization value."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import unicodedata
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Anything that looks like a key or a credential is replaced before a record is written.
_SECRET_PATTERNS = (
    (re.compile(r"akener_[0-9A-Za-z]+"), "akener_[REDACTED]"),
    (re.compile(r"(?i)(bearer|basic)\s+[^\s\"',;]+"), r"\1 [REDACTED]"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',;}]+"), r"\1[REDACTED]"),
)


# A key's body without its prefix (a digest has the same shape; neither belongs in a log).
_BARE_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{64}(?![0-9A-Za-z])")
_HIDDEN_KEY = re.compile(r"akener_[0-9a-z]{8,}|(?<![0-9a-z])[0-9a-f]{64}(?![0-9a-z])")
# Letters from other scripts that look like the Latin ones a key is made of (NFKC keeps them).
_LOOK_ALIKES = str.maketrans(
    # Cyrillic, Greek, Armenian and IPA letters
    "\u0430\u0432\u0441\u0501\u0435\u043a\u043f\u043e\u0440\u0433\u04bb\u0445"
    "\u0455\u0456\u0458\u03b1\u03b2\u03b5\u03ba\u03b7\u03bf\u03c1\u03bd\u0251"
    "\u1d07\u0131\u0280\u0578\u0585",
    "abcdeknoprhxsijabeknopvaeirno",
)


def _skeleton(text: str) -> tuple[str, list[int]]:
    """``text`` as a key reader would see it (NFKC, invisible format characters dropped,
    look-alike letters folded, lower case), and for each character its index in ``text``."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cf":
            continue  # zero-width space/joiner, soft hyphen, bidi marks…
        for folded in unicodedata.normalize("NFKC", char).translate(_LOOK_ALIKES).lower():
            out.append(folded)
            origin.append(index)
    return "".join(out), origin


def _redact_disguised(text: str) -> str:
    """Replace keys broken up by invisible characters or spelled with look-alike ones."""
    skeleton, origin = _skeleton(text)
    spans = [(origin[m.start()], origin[m.end() - 1] + 1) for m in _HIDDEN_KEY.finditer(skeleton)]
    for start, end in reversed(spans):
        text = text[:start] + "[REDACTED]" + text[end:]
    return text


def redact(text: str) -> str:
    """``text`` with every key-like or credential-like part replaced: keys (also a bare 64-hex
    body, or one disguised with zero-width or look-alike characters) and credentials."""
    if not text.isascii():
        text = _redact_disguised(text)
    text = _BARE_HEX.sub("[REDACTED]", text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        """Render and redact a record."""
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(
            {k: v for k, v in vars(record).items() if k not in self._STANDARD | {"color_message"}}
        )
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, default=str, ensure_ascii=False))


def configure_logging(level: str = "info") -> None:
    """Send every logger, uvicorn's included, through the JSON formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Driver loggers show statements with their parameters at debug level: never below info.
    for name in ("aiosqlite", "asyncpg"):
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    # At debug level SQLAlchemy shows the statements; engines are made with hide_parameters.
    logging.getLogger("sqlalchemy.engine").setLevel(
        logging.INFO if root.level <= logging.DEBUG else logging.WARNING
    )
    # Our own access log replaces uvicorn's (it logs no headers and no query string).
    logging.getLogger("uvicorn.access").disabled = True


class RequestLogMiddleware:
    """Logs method, path, status, duration and client of each request; no headers, no query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("akener.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and log one line when it ends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log_request(self.log, scope, status, started)


def log_request(log: logging.Logger, scope: Scope, status: int, started: float) -> None:
    """The access line of one request (also written by the API's fast path, akener.api.fastpath):
    method, path, status, duration since ``started`` (``time.perf_counter``) and client."""
    client = scope.get("client")
    log.info(
        "request",
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "client": client[0] if client else None,
        },
    )
