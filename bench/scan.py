"""How fast ``akener scan`` reads text: MB/s of source-like text on one core.

Generates ~200 MB of code-like text (a few keys in it), then times akener.leaks.scan over the
files. Run pinned to one core:  taskset -c 0 .venv/bin/python bench/scan.py
The issue's bar is 100 MB/s.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path

from akener.leaks.scan import find_in_paths

LINE = b"    result = compute_value(alpha, beta, gamma)  # a comment about akener keys\n"
FILES = 20
FILE_BYTES = 10 * 1024 * 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        block = LINE * (FILE_BYTES // len(LINE))
        for number in range(FILES):
            key = b"akener_" + secrets.token_hex(32).encode()
            (root / f"f{number}.py").write_bytes(block + b"TOKEN = '" + key + b"'\n")
        total = sum(p.stat().st_size for p in root.iterdir())
        find_in_paths([root])  # warm the page cache
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            found = list(find_in_paths([root]))
            best = min(best, time.perf_counter() - start)
        assert len(found) == FILES
        cpus = sorted(os.sched_getaffinity(0))
        print(
            f"scanned {total / 1e6:.0f} MB in {best:.3f} s: {total / 1e6 / best:.0f} MB/s "
            f"(cpus {cpus}, {len(found)} keys found)"
        )


if __name__ == "__main__":
    main()
