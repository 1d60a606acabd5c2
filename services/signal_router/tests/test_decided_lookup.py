"""The gateway's duplicate read on the real database: it answers, and a database that does not answer in time costs
the webhook its budget, not more, and reads as "not known"."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from signal_router.adapters.decided import DecidedLookup

pytestmark = pytest.mark.infra


async def test_a_blocked_read_answers_not_known_within_its_budget(service, router_settings):
    lookup = DecidedLookup(router_settings, budget_seconds=0.2)
    await lookup.start()
    try:
        assert await lookup("content:never-seen") is False
        async with service.runtime.engine.begin() as locker:
            await locker.execute(sa.text("LOCK TABLE signals IN ACCESS EXCLUSIVE MODE"))
            started = time.monotonic()
            assert await lookup("content:never-seen") is False
            took = time.monotonic() - started
        assert 0.2 <= took < 1.0, took
        assert await lookup("content:never-seen") is False  # the pool recovers from the cancelled read
    finally:
        await lookup.stop()
    assert await lookup("content:never-seen") is False  # stopped: not known, no error


async def test_a_decided_signal_is_known(service, router_settings):
    key = "client:lookup-test:1"
    async with service.runtime.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO signals (dedup_key, signal_id, signal_key, bot_id, outcome, skip_reason, received_at)"
                " VALUES (:k, gen_random_uuid(), 'lookup', gen_random_uuid(), 'skipped', 'stale_signal', now())"
            ),
            {"k": key},
        )
    lookup = DecidedLookup(router_settings, budget_seconds=1.0)
    await lookup.start()
    try:
        assert (await lookup(key), await lookup(key + "x")) == (True, False)
    finally:
        await lookup.stop()
