"""The Verifier against a real akener (SQLite and PostgreSQL): memory, revocation through the
change stream, the stream cut and resumed, akener stopped (fail closed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from akener_client import Verification, Verifier
from akener_client.models import RateLimitWindow
from tests.support import OwnServer, Relay, own_server, until

# Seconds within which a change must reach the verifier's memory. akener's own processes on
# other hosts meet "milliseconds, rarely tenths of a second" (docs/verification.md); the
# measured times are printed (pytest -s) and bench/ measures more.
BOUND = 1.0


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def akener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnServer]:
    """An akener of this module's own, on each database."""
    with own_server(request.param, tmp_path_factory.mktemp(request.param)) as server:
        yield server


@pytest.fixture
def verifier(akener: OwnServer) -> Iterator[Verifier]:
    """A Verifier following the server's change stream, in sync."""
    one = Verifier(akener.url, akener.cli_key("api_keys.verify"), timeout=2)
    try:
        assert one.wait_ready(10), "the change stream never became ready"
        skip_unless_cacheable(akener)
        yield one
    finally:
        one.close()


def skip_unless_cacheable(akener: OwnServer) -> None:
    """Memory needs the verify API's ``expires_at`` and ``limited`` (akener from the fast
    verify work on); an older server is only ever asked, which other tests cover."""
    _, key = _key(akener)
    with akener.admin() as admin:
        answer = admin.verify_key(key)
    assert answer.key is not None
    if answer.key.limited is None:
        pytest.skip("this akener's verify API does not say whether a key is limited")


def _key(akener: OwnServer, *scopes: str, **kw: object) -> tuple[str, str]:
    with akener.admin() as admin:
        created = admin.create_key(f"k {time.monotonic_ns()}", scopes, **kw)  # type: ignore[arg-type]
    assert created.key is not None
    return created.id, created.key


def test_first_check_asks_later_ones_answer_from_memory(
    akener: OwnServer, verifier: Verifier
) -> None:
    key_id, key = _key(akener, "reports.read", owner_id="acme")
    first = verifier.verify(key, ["reports.read"])
    assert first.valid and first.code == "VALID" and not first.cached
    assert (first.key_id, first.scopes, first.owner_id) == (
        key_id,
        frozenset({"reports.read"}),
        "acme",
    )
    # A key with an owner counts toward the owner's limits: always asked.
    assert not verifier.verify(key, ["reports.read"]).cached

    key_id, key = _key(akener, "reports.read")
    assert not verifier.verify(key).cached
    again = verifier.verify(key, ["reports.read"])
    assert again.valid and again.cached and again.key_id == key_id and again.owner_id is None
    lacking = verifier.verify(key, ["reports.write"])
    assert (lacking.valid, lacking.code, lacking.cached) == (False, "INSUFFICIENT_SCOPE", True)
    assert asyncio.run(verifier.averify(key, ["reports.read"])) == again

    assert verifier.verify("akener_xyz").code == "MALFORMED"
    unknown = "akener_" + "0" * 64
    assert verifier.verify(unknown).code == "NOT_FOUND"
    assert verifier.verify(unknown) == Verification(False, "NOT_FOUND", cached=True)
    # Memory holds digests, never a key.
    held = repr(vars(verifier)) + repr(verifier._known) + repr(verifier._unknown)
    assert key not in held and key[7:] not in held


def test_a_change_reaches_memory_through_the_stream(akener: OwnServer, verifier: Verifier) -> None:
    times = []
    with akener.admin() as admin:
        for change in ("deactivate", "delete", "scopes"):
            key_id, key = _key(akener, "reports.read")
            verifier.verify(key)
            assert verifier.verify(key, ["reports.read"]).cached
            if change == "deactivate":
                started = time.perf_counter()
                admin.deactivate_key(key_id)
                expected = "INACTIVE"
            elif change == "delete":
                started = time.perf_counter()
                admin.delete_key(key_id)
                expected = "NOT_FOUND"
            else:
                started = time.perf_counter()
                admin.update_key(key_id, scopes=[])
                expected = "INSUFFICIENT_SCOPE"
            answered = time.perf_counter()
            until(lambda key=key: not verifier.verify(key, ["reports.read"]).valid, BOUND)
            times.append((answered - started, time.perf_counter() - answered))
            assert verifier.verify(key, ["reports.read"]).code == expected
    shown = [(round(a * 1000, 1), round(b * 1000, 1)) for a, b in times]
    print(f"(API call, then until the verifier refused) in ms: {shown}")


def test_limited_keys_are_always_asked_and_expiry_is_kept_by_the_clock(
    akener: OwnServer, verifier: Verifier
) -> None:
    _, limited = _key(akener, "reports.read", rate_limits=[RateLimitWindow("minute", 2, 60)])
    answers = [verifier.verify(limited, ["reports.read"]) for _ in range(3)]
    assert [(a.code, a.cached) for a in answers] == [
        ("VALID", False),
        ("VALID", False),
        ("RATE_LIMITED", False),
    ]
    assert answers[2].retry_after is not None and answers[2].status == 429

    soon = datetime.now(UTC) + timedelta(seconds=3)
    _, expiring = _key(akener, "reports.read", expires_at=soon)
    assert verifier.verify(expiring).valid
    assert verifier.verify(expiring).cached
    time.sleep(max(0.0, soon.timestamp() - time.time()) + 0.05)
    expired = verifier.verify(expiring)
    assert (expired.code, expired.cached) == ("EXPIRED", True)  # from memory, by the clock

    # A rotated-out secret works from memory until its grace period ends, then never.
    key_id, old = _key(akener, "reports.read")
    with akener.admin() as admin:
        new = admin.rotate_key(key_id, grace_period_seconds=2).key
    assert new is not None
    until(lambda: verifier.verify(old).valid and verifier.verify(old).cached, BOUND)
    until(lambda: verifier.verify(old).code == "EXPIRED", 4)
    assert verifier.verify(old).cached
    assert verifier.verify(new).valid


def test_the_stream_cut_and_resumed(akener: OwnServer) -> None:
    skip_unless_cacheable(akener)
    relay = Relay(akener.port)
    verifier = Verifier(relay.url, akener.cli_key("api_keys.verify"), timeout=1)
    try:
        assert verifier.wait_ready(10)
        key_id, key = _key(akener, "reports.read")
        verifier.verify(key)
        assert verifier.verify(key).cached

        # Cut: memory is no longer trusted, and akener cannot be asked: refused, never valid.
        relay.cut()
        until(lambda: not verifier.trusted, 2)
        answer = verifier.verify(key)
        assert (answer.valid, answer.code) == (False, "UNAVAILABLE") and answer.status == 503

        # Switched off meanwhile; the stream resumes from its cursor and replays the change.
        with akener.admin() as admin:
            admin.deactivate_key(key_id)
        cursor = verifier.cursor
        relay.restore()
        until(lambda: verifier.trusted, 10, 0.01)
        assert verifier.connects == 2 and cursor is not None
        assert verifier.verify(key).code == "INACTIVE"

        # A silent partition: no heartbeat, so memory stops answering within 2.5 heartbeats.
        _, other = _key(akener, "reports.read")
        verifier.verify(other)
        assert verifier.verify(other).cached
        relay.freeze()
        waited = until(lambda: verifier.cached(other) is None, 4, 0.01)
        assert verifier.verify(other).code == "UNAVAILABLE"
        relay.restore()
        until(lambda: verifier.verify(other).cached, 15, 0.05)
        print(f"silent stream noticed after {waited:.2f} s")
    finally:
        verifier.close()
        relay.close()


def test_akener_stopped_fails_closed_then_recovers(akener: OwnServer, verifier: Verifier) -> None:
    _, key = _key(akener, "reports.read")
    verifier.verify(key)
    assert verifier.verify(key).cached
    akener.stop()
    try:
        until(lambda: not verifier.trusted, 2)
        for _ in range(3):
            answer = verifier.verify(key)
            assert (answer.valid, answer.code) == (False, "UNAVAILABLE")
        assert asyncio.run(verifier.averify(key)).code == "UNAVAILABLE"
    finally:
        akener.start()
    until(lambda: verifier.trusted, 15, 0.05)
    assert verifier.verify(key).valid
    assert verifier.verify(key).cached
