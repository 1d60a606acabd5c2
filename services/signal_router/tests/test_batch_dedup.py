"""The durable dedup table: taken once within and across batches, pruned after its retention."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from router_support import new_bot
from test_domain import NOW, received

from signal_router import domain, repository
from signal_router.repository import SIGNALS


async def test_a_dedup_key_is_taken_once_within_a_batch_and_across_batches(service):
    bot, _ = new_bot()
    first, other = received(bot), received(bot)
    again = first.model_copy(update={"message_id": other.message_id})  # same signal, redelivered as a new message
    decided = [(signal, domain.route(signal, bot, NOW, timedelta(seconds=60))) for signal in (first, again, other)]
    async with service.runtime.engine.begin() as conn:
        assert await repository.claim_signals(conn, decided) == [True, False, True]
    async with service.runtime.engine.begin() as conn:
        assert await repository.claim_signals(conn, decided) == [False, False, False]
        rows = (
            await conn.execute(
                sa.select(SIGNALS.c.dedup_key, SIGNALS.c.outcome, SIGNALS.c.intent_id).where(
                    SIGNALS.c.signal_key == bot.signal_key
                )
            )
        ).all()
    assert sorted(rows) == sorted(
        [(first.dedup_key, "routed", decided[0][1].intent_id), (other.dedup_key, "routed", decided[2][1].intent_id)]
    )


async def test_dedup_rows_older_than_the_retention_are_pruned_and_recent_ones_kept(service):
    bot, _ = new_bot()
    old, recent = received(bot), received(bot)
    decided = [(signal, domain.route(signal, bot, NOW, timedelta(seconds=60))) for signal in (old, recent)]
    async with service.runtime.engine.begin() as conn:
        assert await repository.claim_signals(conn, decided) == [True, True]
        await conn.execute(
            SIGNALS.update()
            .where(SIGNALS.c.dedup_key == old.dedup_key)
            .values(decided_at=sa.func.now() - timedelta(days=31))
        )
    async with service.runtime.engine.begin() as conn:
        assert await repository.prune_signals(conn, timedelta(days=30)) == 1
        kept = set(
            (await conn.execute(sa.select(SIGNALS.c.dedup_key).where(SIGNALS.c.signal_key == bot.signal_key))).scalars()
        )
    assert kept == {recent.dedup_key}
