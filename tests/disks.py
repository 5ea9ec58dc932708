"""Small disks for fault tests: a tmpfs of a few megabytes that a test can fill, or mount
read-only from the start (``chmod`` stops no root process; a read-only mount does)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def available() -> str | None:
    """Why no tmpfs can be mounted here, or None when one can."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    return None


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def tmpfs(size: str = "4m") -> Iterator[Path]:
    """A fresh tmpfs of ``size``, unmounted and removed afterwards."""
    where = Path(tempfile.mkdtemp(prefix="akener-disk-"))
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)
        where.rmdir()


def read_only(where: Path) -> None:
    """Remount ``where`` read-only (refused while a file on it is open for writing)."""
    _mount("-o", "remount,ro", str(where))


def fill(where: Path) -> Path:
    """Write a file until the disk has no byte left; returns it (delete it to free the disk)."""
    ballast = where / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = 1 << 20
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
    finally:
        os.close(fd)
    return ballast
