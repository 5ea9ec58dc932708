"""Retention: old audit events, usage days, ended sessions and failed sign-ins are pruned."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.models import LoginFailure, User, WebSession
from akener.audit.models import AuditEvent
from akener.db.base import utcnow
from akener.db.engine import begin_write, make_engine, make_sessionmaker
from akener.keys.models import ApiKey
from akener.retention.service import RetentionPolicy, prune, prune_once
from akener.settings import Settings
from akener.verify.models import KeyUsage
from tests.conftest import TEST_SECRET
from tests.servers import AkenerServer, akener_cli, akener_env

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=utcnow().tzinfo)


async def _seed(session: AsyncSession) -> None:
    """Rows either side of the default cut-offs."""
    key = ApiKey(
        name="k",
        digest="d" * 64,
        pepper_version=1,
        masked_key="akener_" + "*" * 60 + "abcd",
        status="ACTIVE",
        scopes=[],
        created_by="cli",
    )
    user = User(email="u@example.com", display_name="u", password_hash="x")
    session.add_all([key, user])
    await session.flush()
    for age_days in (400, 366, 364, 1):
        session.add(
            AuditEvent(
                occurred_at=NOW - timedelta(days=age_days),
                actor="cli",
                action="key.created",
                target_type="key",
                target_id=key.id,
            )
        )
    for age_days in (401, 400, 399, 0):
        session.add(KeyUsage(key_id=key.id, day=(NOW - timedelta(days=age_days)).date(), count=1))
    for ended_hours_ago in (48, 2, -5):  # -5: still running
        session.add(
            WebSession(
                token_digest=f"{ended_hours_ago:+}".ljust(64, "t"),
                user_id=user.id,
                csrf_token="c",
                expires_at=NOW - timedelta(hours=ended_hours_ago),
            )
        )
    for age_hours in (30, 1):
        session.add(
            LoginFailure(
                email="u@example.com", address="1.2.3.4", at=NOW - timedelta(hours=age_hours)
            )
        )
    await session.flush()


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


DEFAULTS = RetentionPolicy(
    audit_events=timedelta(days=365),
    usage_days=timedelta(days=400),
    ended_sessions=timedelta(days=1),
)


async def test_prune_deletes_exactly_what_is_past_retention(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await begin_write(session)
            await _seed(session)
            result = await prune(session, DEFAULTS, now=NOW)
            await session.commit()
            assert (result.audit_events, result.usage_days) == (2, 1)
            assert (result.ended_sessions, result.login_failures) == (1, 1)
            assert await _count(session, AuditEvent) == 2
            days = sorted((await session.scalars(select(KeyUsage.day))).all())
            assert days[0] == (NOW - timedelta(days=400)).date()  # the day 400 days ago is kept
            assert len(days) == 3
            assert await _count(session, WebSession) == 2
            assert await _count(session, LoginFailure) == 1
    finally:
        await engine.dispose()


async def test_none_keeps_forever_when_the_operator_asks(settings: Settings) -> None:
    forever = RetentionPolicy(audit_events=None, usage_days=None, ended_sessions=None)
    engine = make_engine(settings.database_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            await begin_write(session)
            await _seed(session)
            await session.commit()
        result = await prune_once(sessionmaker, forever, now=NOW + timedelta(days=3650))
        assert (result.audit_events, result.usage_days, result.ended_sessions) == (0, 0, 0)
        async with sessionmaker() as session:
            assert await _count(session, AuditEvent) == 4
            assert await _count(session, KeyUsage) == 4
            assert await _count(session, WebSession) == 3
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30d", timedelta(days=30)), ("4w", timedelta(weeks=4)), ("0", None), ("none", None)],
)
def test_retention_settings_read_durations(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: timedelta | None
) -> None:
    monkeypatch.setenv("AKENER_RETENTION_AUDIT", value)
    assert Settings(_env_file=None).retention_audit == expected  # type: ignore[call-arg]


def test_defaults_keep_a_year_of_audit_and_more_than_a_year_of_usage() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.retention_audit == timedelta(days=365)
    assert settings.retention_usage == timedelta(days=400)
    assert settings.retention_sessions == timedelta(days=1)
    assert settings.prune_interval == timedelta(hours=1)


@pytest.mark.parametrize("value", ["90", "", "-1d", "soon"])
def test_a_bad_retention_setting_is_one_error_line(tmp_path: Path, value: str) -> None:
    env = akener_env(f"sqlite:///{tmp_path}/k.db", TEST_SECRET, AKENER_RETENTION_USAGE=value)
    result = akener_cli(env, tmp_path, "db", "prune")
    assert result.returncode == 1
    assert result.stderr.startswith("error: AKENER_RETENTION_USAGE "), result.stderr
    assert "Traceback" not in result.stderr


def _old_rows(database_url: str) -> None:
    async def work() -> None:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                await begin_write(session)
                for age in (500, 1):
                    session.add(
                        AuditEvent(
                            occurred_at=utcnow() - timedelta(days=age),
                            actor="cli",
                            action="key.created",
                            target_type="key",
                        )
                    )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(work())


def _audit_ages(database_url: str) -> list[int]:
    async def work() -> list[int]:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                rows = await session.scalars(select(AuditEvent.occurred_at))
                return sorted((utcnow() - at).days for at in rows)
        finally:
            await engine.dispose()

    return asyncio.run(work())


def test_akener_db_prune_deletes_old_audit_events(database_url: str, tmp_path: Path) -> None:
    _old_rows(database_url)
    env = akener_env(database_url, TEST_SECRET)
    result = akener_cli(env, tmp_path, "db", "prune")
    assert result.returncode == 0, result.stderr
    assert "Pruned 1 audit events" in result.stderr
    assert _audit_ages(database_url) == [1]


def test_the_server_prunes_periodically(database_url: str, tmp_path: Path) -> None:
    _old_rows(database_url)
    env = akener_env(database_url, TEST_SECRET, AKENER_PRUNE_INTERVAL="1s")
    with AkenerServer(env, tmp_path):
        deadline = utcnow() + timedelta(seconds=20)
        while _audit_ages(database_url) != [1] and utcnow() < deadline:
            asyncio.run(asyncio.sleep(0.2))
    assert _audit_ages(database_url) == [1]


def test_the_indexes_the_pruning_uses_exist(sqlite_template: Path) -> None:
    with sqlite3.connect(sqlite_template) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"ix_key_usage_day", "ix_web_sessions_expires_at", "ix_login_failures_at"} <= names
