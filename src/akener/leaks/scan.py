"""Finding akener keys in files and in a git repository's history (pure: no database).

One compiled regular expression over bytes: files are memory-mapped and searched in place, so
the cost is the regex engine's scan for the literal ``akener_`` prefix (bench/scan.py measures
it). Line numbers are counted only up to each match.
"""

from __future__ import annotations

import mmap
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# A key is exactly 64 hex characters after the prefix; a longer hex run is not a key.
KEY_BYTES_RE = re.compile(rb"akener_[0-9a-f]{64}(?![0-9a-f])")
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})


@dataclass(frozen=True, slots=True)
class Finding:
    """A key found at ``where`` (a path, or ``commit:path`` in history), on line ``line``."""

    where: str
    line: int
    key: str


def find_in_bytes(data: bytes | mmap.mmap, where: str) -> Iterator[Finding]:
    """Every key in ``data``, with its 1-based line number."""
    line, counted = 1, 0
    for match in KEY_BYTES_RE.finditer(data):
        start = match.start()
        line += data[counted:start].count(b"\n")
        counted = start
        yield Finding(where, line, match.group().decode("ascii"))


def find_in_file(path: Path) -> list[Finding]:
    """Every key in one file (empty, unreadable and special files have none)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return []
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return list(find_in_bytes(mapped, str(path)))
    except (OSError, ValueError):
        return []


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Every regular file under ``paths`` (VCS and dependency folders skipped)."""
    for root in paths:
        if root.is_file():
            yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                path = Path(folder, name)
                if path.is_file() and not path.is_symlink():
                    yield path


def find_in_paths(paths: Iterable[Path]) -> Iterator[Finding]:
    """Every key in every file under ``paths``."""
    for path in walk(paths):
        yield from find_in_file(path)


_HUNK_RE = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def find_in_git(repo: Path) -> Iterator[Finding]:
    """Every key added by any commit of ``repo`` (all refs), as ``commit:path`` and line."""
    command = [
        "git",
        "-C",
        str(repo),
        "log",
        "--all",
        "-p",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        "--format=%x00commit %H",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)  # noqa: S603 - fixed argv
    assert process.stdout is not None
    commit, path, line = "", "", 0
    for raw in process.stdout:
        if raw.startswith(b"\x00commit "):
            commit = raw[8:].strip().decode()[:12]
        elif raw.startswith(b"+++ "):
            name = raw[4:].rstrip(b"\n")
            path = name[2:].decode(errors="replace") if name.startswith(b"b/") else ""
        elif raw.startswith(b"@@"):
            found = _HUNK_RE.match(raw)
            line = int(found.group(1)) if found else 0
        elif raw.startswith(b"+"):
            for match in KEY_BYTES_RE.finditer(raw):
                yield Finding(f"{commit}:{path}", line, match.group().decode("ascii"))
            line += 1
    if process.wait() != 0:
        raise OSError(f"git log failed in {repo} (is it a git repository?)")
