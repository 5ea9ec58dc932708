"""The README's example runs as written against a real server."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from akener_client import AkenerClient
from tests.conftest import Server

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_five_line_example_creates_and_switches_off_a_key(server: Server) -> None:
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert example is not None
    code = example.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 6
    code = code.replace("https://akener.example.com", server.url)
    code = code.replace('"akener_…"', repr(server.admin_key))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})  # noqa: S102 (our own README)
    key_id, key = out.getvalue().split()
    with AkenerClient(server.url, server.admin_key) as akener:
        assert akener.get_key(key_id).status == "INACTIVE"
        assert akener.verify_key(key).code == "INACTIVE"
