"""An event written once per dedupe string even when two transactions race to write it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from akener.db.engine import begin_write
from akener.events.models import OutboxEvent
from akener.events.outbox import emit_event
from akener.runtime import Runtime
from tests.factories import make_key


async def test_two_transactions_racing_on_one_dedupe_write_one_event(runtime: Runtime) -> None:
    row, _ = await make_key(runtime, "raced")
    dedupe = f"key.refused:{row.id}:1"
    async with runtime.sessionmaker() as first, runtime.sessionmaker() as second:
        await begin_write(first)
        written = await emit_event(first, "key.refused", key_id=row.id, data={}, dedupe=dedupe)
        assert written is not None

        async def late() -> OutboxEvent | None:
            # Starts before the first commits: on PostgreSQL it passes the check, then waits on
            # the unique index; on SQLite it waits for the write lock.
            await begin_write(second)
            event = await emit_event(second, "key.refused", key_id=row.id, data={}, dedupe=dedupe)
            # The rest of its transaction is still good.
            other = await emit_event(second, "key.updated", key_id=row.id, data={}, dedupe=None)
            await second.commit()
            assert other is not None
            return event

        racing = asyncio.create_task(late())
        await asyncio.sleep(0.3)
        await first.commit()
        assert await asyncio.wait_for(racing, 30) is None
    async with runtime.sessionmaker() as session:
        same = select(func.count()).where(OutboxEvent.dedupe == dedupe)
        assert await session.scalar(same) == 1
        updated = select(func.count()).where(
            OutboxEvent.key_id == row.id, OutboxEvent.type == "key.updated"
        )
        assert await session.scalar(updated) == 1
