"""Webhooks on a broken machine: kill -9 of the sender, the database gone mid-delivery."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import pgcluster
from tests.conftest import TEST_SECRET
from tests.receivers import Receiver
from tests.servers import AkenerServer, akener_cli, akener_env, process_tree

FAST = {
    "AKENER_WEBHOOKS_ALLOW_PRIVATE": "true",
    "AKENER_WEBHOOKS_POLL_SECONDS": "0.1",
    "AKENER_WEBHOOKS_LEASE_SECONDS": "2",
}


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = akener_cli(env, cwd, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_kill_9_with_undelivered_events_delivers_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    env = akener_env(database_url, TEST_SECRET, **FAST)
    with Receiver(status=503) as receiver:
        secret = _cli(env, tmp_path, "webhooks", "create", "--url", receiver.url,
                      "--event", "key.created")  # fmt: skip
        with AkenerServer(env, tmp_path) as server:
            _cli(env, tmp_path, "keys", "create", "--name", "first")
            wait_for(lambda: len(receiver.got) >= 1)  # tried once, refused by the receiver
            assert server.process is not None
            for pid in process_tree(server.process.pid):
                os.kill(pid, signal.SIGKILL)
            server.process.wait()
        receiver.status = 200
        # Committed while no akener runs: nothing can have sent it yet.
        _cli(env, tmp_path, "keys", "create", "--name", "second")
        seen = len(receiver.got)
        with AkenerServer(env, tmp_path):
            # Both arrive after the restart: the one refused before the kill, and the new one.
            wait_for(lambda: {"first", "second"} <= _names(receiver, secret, seen))


def _names(receiver: Receiver, secret: str, since: int) -> set[str]:
    """The key names in the signed deliveries received after the first ``since``."""
    from standardwebhooks import Webhook

    return {
        Webhook(secret).verify(item.body, item.headers)["data"]["key"]["name"]
        for item in list(receiver.got)[since:]
    }


def test_database_down_mid_delivery_sends_again_at_least_once(tmp_path: Path) -> None:
    reason = pgcluster.available()
    if reason:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)
    with pgcluster.PgCluster() as cluster:
        env = akener_env(cluster.url, TEST_SECRET, **FAST, AKENER_DB_QUERY_TIMEOUT_SECONDS="3")
        broken: list[bool] = []

        def break_database(_item: object) -> None:
            if not broken:
                broken.append(True)
                cluster.stop()  # the answer below arrives with the database gone

        with Receiver() as receiver:
            receiver.on_request = break_database
            with AkenerServer(env, tmp_path):
                secret = _cli(env, tmp_path, "webhooks", "create", "--url", receiver.url,
                              "--event", "key.created")  # fmt: skip
                _cli(env, tmp_path, "keys", "create", "--name", "k")
                wait_for(lambda: bool(broken))
                time.sleep(1)
                cluster.start()
                wait_for(lambda: len(receiver.got) >= 2, seconds=60)
        first, second = receiver.got[0], receiver.got[1]
        assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same message
        from standardwebhooks import Webhook

        assert Webhook(secret).verify(second.body, second.headers)["type"] == "key.created"
