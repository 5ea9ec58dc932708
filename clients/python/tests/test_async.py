"""AsyncAkenerClient against a real akener server: the same operations, awaited."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from akener_client import AsyncAkenerClient, AuthenticationError, NotFoundError
from akener_client.models import RateLimitWindow
from tests.conftest import Server


def test_the_async_client_does_what_the_sync_one_does(server: Server) -> None:
    prefix = f"async {uuid.uuid4().hex[:10]}"

    async def scenario() -> None:
        async with AsyncAkenerClient(server.url, server.admin_key) as akener:
            made = [await akener.create_key(f"{prefix} {i}", ["reports.read"]) for i in range(3)]
            listed = [k.id async for k in akener.iter_keys(q=prefix, page_size=2)]
            assert listed == [k.id for k in reversed(made)]

            checks = await asyncio.gather(*(akener.verify_key(k.key) for k in made))
            assert [c.code for c in checks] == ["VALID"] * 3
            assert checks[0].key is not None and checks[0].key.id == made[0].id

            await akener.deactivate_key(made[0].id)
            assert (await akener.verify_key(made[0].key)).code == "INACTIVE"
            assert (await akener.activate_key(made[0].id)).active
            rotated = await akener.rotate_key(made[1].id)
            assert not (await akener.verify_key(made[1].key)).valid  # no grace period
            assert (await akener.verify_key(rotated.key)).valid
            assert (await akener.report_leaked(made[2].id)).status == "INACTIVE"

            owner = uuid.uuid4().hex
            window = RateLimitWindow("all", 50, 60)
            await akener.update_key(made[0].id, owner_id=owner)
            assert (await akener.set_owner(owner, rate_limits=[window])).rate_limits == (window,)
            assert (await akener.get_owner(owner)).key_count == 1

            actions = [e.action async for e in akener.iter_audit_events(target=made[0].id)]
            assert actions[-1] == "key.created" and "key.deactivated" in actions
            page = await akener.list_audit_events(limit=1)
            assert len(page.items) == 1 and page.next_cursor is not None

            await akener.delete_key(made[0].id)
            with pytest.raises(NotFoundError):
                await akener.get_key(made[0].id)

        async with AsyncAkenerClient(server.url, made[1].key) as old:
            with pytest.raises(AuthenticationError):
                await old.whoami()
        async with AsyncAkenerClient(server.url, server.admin_key) as akener:
            assert (await akener.whoami()).name == "client tests admin"

    asyncio.run(scenario())
