"""Many single-process akener servers, forked from one parent that imported akener once.

``python tests/forkserve.py LOG_DIR PORT:COUNTER_DIR ...`` starts one uvicorn server per
argument, each a process of its own with its own runtime (engine, pool, listener, cache, made
in its lifespan after the fork) and its own change counter directory (as if on a host of its
own). Importing akener costs seconds of CPU per process; forking after the import lets a test
start 24 of them on a two-core machine within its time budget. SIGTERM stops every child
(each one's clean shutdown, as with ``akener serve``). Each child's pid is written to
``LOG_DIR/<port>.pid`` and its output to ``LOG_DIR/<port>.log``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import uvicorn

import akener.app  # noqa: F401 -- imported once, before the fork, for every child


def serve(port: int, counter_dir: str, log_dir: Path) -> None:
    """The child: its own counter directory, its output in a file, one uvicorn server."""
    os.environ["AKENER_CHANGE_COUNTER_DIR"] = counter_dir
    log = os.open(log_dir / f"{port}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    uvicorn.run(
        "akener.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        # The test's one client process drives 24 servers on a crowded machine and may take
        # seconds to reuse a connection; uvicorn's 5 s idle close would race with it.
        timeout_keep_alive=60,
    )


def main() -> None:
    """Fork one child per PORT:COUNTER_DIR, forward SIGTERM, wait for all."""
    log_dir = Path(sys.argv[1])
    children: list[int] = []
    for spec in sys.argv[2:]:
        port, _, counter_dir = spec.partition(":")
        pid = os.fork()
        if pid == 0:
            try:
                serve(int(port), counter_dir, log_dir)
            finally:
                os._exit(0)
        (log_dir / f"{port}.pid").write_text(str(pid))
        children.append(pid)

    def stop(_signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


if __name__ == "__main__":
    main()
