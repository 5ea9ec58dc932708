"""The two FastAPI apps bench/verifier.py compares: the same route, without and with the
akener_client dependency (a Verifier checking the request's key, answered from memory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python" / "src"))

from akener_client import Verification, Verifier
from akener_client.middleware.asgi import install, require_key

plain = FastAPI()


@plain.get("/report")
async def report_plain() -> dict[str, Any]:
    """The route alone."""
    return {"report": 42}


guarded = FastAPI()
install(guarded)
_verifier = Verifier(
    os.environ.get("AKENER_URL", "http://127.0.0.1:9"),
    os.environ.get("AKENER_BENCH_KEY", "akener_" + "0" * 64),
)
_checked = Depends(require_key(_verifier, "reports.read"))


@guarded.get("/report")
async def report_guarded(key: Verification = _checked) -> dict[str, Any]:
    """The same route behind the dependency."""
    return {"report": 42}
