"""Sign-in under concurrency: the per-account limit holds, and hashing never holds the lock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from akener.accounts import passwords
from akener.accounts.permissions import CLI_PRINCIPAL
from akener.accounts.sessions import LoginPolicy, log_in
from akener.db.engine import begin_write
from akener.errors import AuthenticationFailed, RateLimited
from akener.keys.models import KeyStatus
from akener.keys.service import set_key_status
from akener.runtime import Runtime
from akener.settings import Settings
from tests.factories import make_key, make_user


class CountingVerify:
    """Wraps the password check run in worker threads, counting the calls."""

    def __init__(self, real: Callable[..., bool]) -> None:
        self.real = real
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> bool:
        with self.lock:
            self.calls += 1
        return self.real(*args)


async def _attempt(runtime: Runtime, email: str, password: str, policy: LoginPolicy) -> str:
    async with runtime.sessionmaker() as session:
        await begin_write(session)
        try:
            await log_in(session, email=email, password=password, address="10.0.0.1", policy=policy)
            outcome = "ok"
        except AuthenticationFailed:
            outcome = "wrong"
        except RateLimited:
            outcome = "limited"
        await session.commit()
        return outcome


async def test_many_simultaneous_attempts_check_no_more_passwords_than_the_limit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 attempts at one account queue behind one advisory lock; with the default pool of 2
    # the last would wait longer than the pool timeout on a busy machine (a 503, not a wrong
    # count). The limit is what is checked here, so every attempt gets a connection.
    runtime = await Runtime.start(settings.model_copy(update={"db_pool_size": 32}))
    try:
        await make_user(runtime, "ada@example.com", "admin")
        counting = CountingVerify(passwords._verify)
        monkeypatch.setattr(passwords, "_verify", counting)
        policy = LoginPolicy(max_failures_per_account=5, max_failures_per_address=1000)
        outcomes = await asyncio.gather(
            *(_attempt(runtime, "ada@example.com", f"wrong guess {i}", policy) for i in range(30))
        )
        assert counting.calls == 5
        assert outcomes.count("wrong") == 5 and outcomes.count("limited") == 25
        # the right password is refused too while the account is locked, without being checked
        right = await _attempt(runtime, "ada@example.com", "correct horse battery", policy)
        assert right == "limited"
        assert counting.calls == 5
    finally:
        await runtime.close()


async def test_a_good_password_still_signs_in_and_clears_its_reservation(
    runtime: Runtime,
) -> None:
    await make_user(runtime, "ada@example.com", "admin")
    policy = LoginPolicy(max_failures_per_account=2)
    assert await _attempt(runtime, "ada@example.com", "nope nope nope", policy) == "wrong"
    assert await _attempt(runtime, "ada@example.com", "correct horse battery", policy) == "ok"
    for _ in range(2):  # the success cleared the failures: two more tries before the lock
        assert await _attempt(runtime, "ada@example.com", "nope nope nope", policy) == "wrong"
    assert await _attempt(runtime, "ada@example.com", "correct horse battery", policy) == "limited"


async def test_a_deactivation_does_not_wait_behind_sign_ins(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite one writer at a time holds the database: sign-ins busy checking passwords
    must not hold it, so a deactivation goes through at once."""
    key_id = (await make_key(runtime, "Leaked"))[0].id
    slow = 1.0  # each password check takes this long (a slow Argon2 on a busy machine)

    def slow_verify(stored: str | None, password: str) -> bool:
        time.sleep(slow)
        return False

    monkeypatch.setattr(passwords, "_verify", slow_verify)
    policy = LoginPolicy(max_failures_per_account=1000, max_failures_per_address=1000)
    started = time.perf_counter()
    burst = asyncio.gather(
        *(_attempt(runtime, f"user{i}@example.com", "guess guess guess", policy) for i in range(8))
    )
    await asyncio.sleep(0.1)  # every sign-in is now inside its password check
    before = time.perf_counter()
    async with runtime.sessionmaker() as session:
        await begin_write(session)
        await set_key_status(session, CLI_PRINCIPAL, key_id, KeyStatus.INACTIVE)
        await session.commit()
    deactivation = time.perf_counter() - before
    outcomes = await burst
    total = time.perf_counter() - started
    assert outcomes == ["wrong"] * 8
    # with the lock held through each check the deactivation would wait for at least one
    assert deactivation < slow / 2, (deactivation, total)
    assert total >= slow
