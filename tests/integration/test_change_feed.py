"""The change feed in one process: one reader for every open stream, woken by commits."""

from __future__ import annotations

import asyncio

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.events.feed import ChangeFeed, Item, change_of, encode_cursor, parse_cursor
from akener.keys import service
from akener.keys.models import ApiKey, KeyStatus
from akener.runtime import Runtime
from tests.factories import make_key


async def _switch_off(runtime: Runtime, row: ApiKey) -> None:
    """A key change, committed as the API commits one (this wakes the feed)."""
    async with runtime.sessionmaker() as session:
        await service.set_key_status(session, CLI_PRINCIPAL, row.id, KeyStatus.INACTIVE)
        await session.commit()


async def _next(sub: object) -> Item:
    item = await sub.next(2.0)  # type: ignore[attr-defined]
    assert item is not None, "nothing arrived"
    assert isinstance(item, Item)
    return item


async def test_one_reader_serves_every_stream(runtime: Runtime) -> None:
    feed: ChangeFeed = runtime.feed
    subs = [await feed.subscribe("watcher", None) for _ in range(50)]
    assert feed.subscribers == 50
    await asyncio.sleep(0.1)
    polls = feed.polls
    row, _ = await make_key(runtime, "changed")
    items = [await _next(sub) for sub in subs]
    assert {(i.kind, i.change.key_id if i.change else None) for i in items} == {("change", row.id)}
    # One read of the log for all fifty streams (plus at most a periodic one meanwhile).
    assert feed.polls - polls <= 2
    for sub in subs:
        feed.unsubscribe(sub)
    await asyncio.sleep(0.1)
    assert feed.subscribers == 0


async def test_a_stream_that_falls_behind_gets_one_reset(runtime: Runtime) -> None:
    feed = runtime.feed
    feed.max_queue = 3
    rows = [(await make_key(runtime, f"k{i}"))[0] for i in range(5)]
    sub = await feed.subscribe("watcher", None)
    for row in rows:
        await _switch_off(runtime, row)
    await asyncio.sleep(0.3)
    kinds = []
    while (item := await sub.next(0.2)) is not None:
        kinds.append(item.kind)
    assert "reset" in kinds and len(kinds) <= 3
    feed.unsubscribe(sub)


def test_cursors_and_changes_read_only_what_they_should() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 3, tzinfo=UTC)
    assert parse_cursor(encode_cursor(42, at)) == (42, at)
    for bad in ("", "42", "-1-5", "a-1", "1-1-1", "9" * 30 + "-1"):
        assert parse_cursor(bad) is None
    payload = {"data": {"changes": {"scopes": {"before": ["a"], "after": []}}}}
    change = change_of(7, "key.updated", "k", payload, at)
    assert change is not None and change.fields == ("scopes",)
    assert "before" not in str(change.as_json()) and "a" not in change.as_json()["fields"]
    assert change_of(8, "key.refused", "k", {}, at) is None
    assert change_of(9, "key.expiring", "k", {}, at) is None
    assert change_of(10, "key.deleted", None, {}, at) is None
