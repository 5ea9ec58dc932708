"""The client's environment holds nothing of the server: the package stands on httpx alone."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import akener_client


def test_the_server_package_is_not_installed_here() -> None:
    assert importlib.util.find_spec("akener") is None
    # The server's own dependencies (the middleware extras may bring FastAPI, Flask, Django).
    for dependency in ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "typer", "argon2"):
        assert importlib.util.find_spec(dependency) is None, dependency


def test_the_client_imports_nothing_but_itself_httpx_and_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import akener_client; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    third_party = loaded - set(sys.stdlib_module_names) - {"akener_client"}
    # httpx and what it needs; httpx also loads its command line's click/rich/pygments when
    # they are installed (the flask extra brings click).
    allowed = {"httpx", "httpcore", "anyio", "sniffio", "h11", "idna", "certifi"}
    allowed |= {"click", "rich", "pygments", "markdown_it", "mdurl", "_cffi_backend"}
    assert third_party <= allowed, third_party - allowed
    # The middlewares' frameworks are optional: importing the package loads none of them.
    assert not loaded & {"akener", "fastapi", "starlette", "flask", "django", "pydantic"}


def test_the_distribution_depends_only_on_httpx() -> None:
    requires = importlib.metadata.requires("akener-client") or []
    runtime = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("<")[0].split("=")[0].strip() for r in runtime] == ["httpx"]


def test_this_environment_is_the_client_s_own() -> None:
    here = Path(akener_client.__file__).resolve()
    assert Path(sys.prefix).resolve() == here.parents[2] / ".venv"
