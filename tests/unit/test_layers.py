"""Domain packages never import the web or CLI frameworks (STYLE.md, Layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import akener

ROOT = Path(akener.__file__).parent
DOMAIN = ["keys", "verify", "accounts", "audit", "db", "retention", "events", "metrics"]
FRAMEWORKS = {"fastapi", "starlette", "jinja2", "typer", "uvicorn"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_package_imports_no_framework(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files, package
    for path in files:
        assert not imported_modules(path) & FRAMEWORKS, path


def test_tokens_module_is_pure() -> None:
    imports = imported_modules(ROOT / "keys" / "tokens.py")
    assert imports <= {"__future__", "collections", "hashlib", "hmac", "re", "secrets"}
