"""A burst of signals for one bot is applied in the order it was sent: each close closes what the buy before it opened.

The signals are POSTed back to back, so every close reaches the ledger while the buy
before it is still at the venue; it waits for that buy to settle instead of being
skipped, and the next buy waits for the close.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from e2e_helpers import paper_mark_price, post_signal

from egis_localinfra.testing import eventually
from executor.adapters import repository as executor_repo
from ledger import repository as ledger_repo

pytestmark = pytest.mark.infra
ROUND_TRIPS = 5


async def test_a_burst_of_buys_and_closes_opens_and_closes_every_position_in_order(
    create_bot, gateway, ledger_runtime, executor, producer
):
    bot, secret = await create_bot("paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10")
    await paper_mark_price(producer, executor, "ETHUSDT", Decimal("2942.67"))

    sent = []
    for _ in range(ROUND_TRIPS):
        sent.append(await post_signal(gateway, bot, secret, "buy"))
        sent.append(await post_signal(gateway, bot, secret, "exit"))

    bot_id = uuid.UUID(bot["bot_id"])

    async def every_intent_settled():
        table = executor_repo.intents
        async with executor.runtime.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(table.c.intent_id, table.c.status, table.c.skip_reason).where(table.c.bot_id == bot_id)
                )
            ).all()
        done = {r.intent_id: (r.status, r.skip_reason) for r in rows if r.status in ("filled", "skipped", "rejected")}
        return done if len(done) == len(sent) else None

    settled = await eventually(every_intent_settled, timeout=60, what="every intent of the burst settled")
    assert [settled[intent_id] for intent_id in sent] == [("filled", None)] * len(sent), "nothing skipped"

    table = ledger_repo.positions

    async def every_position_settled():
        # The executor's last fill reaches the ledger over Kafka a moment after the executor recorded it.
        async with ledger_runtime.engine.connect() as conn:
            rows = (await conn.execute(sa.select(table).where(table.c.bot_id == bot_id))).all()
        return (
            rows if len(rows) == ROUND_TRIPS and all(r.status in ("closed", "open", "failed") for r in rows) else None
        )

    positions = await eventually(every_position_settled, timeout=30, what="every position of the burst settled")
    by_open = {p.open_intent_id: p for p in positions}
    assert len(positions) == ROUND_TRIPS
    for buy, close in zip(sent[::2], sent[1::2], strict=True):
        position = by_open[buy]
        assert (position.status, position.close_intent_id) == ("closed", close), "each close closed its own buy"
        assert None not in (
            position.close_exchange_order_id,
            position.close_price,
            position.closed_at,
            position.realised_pnl_usd,
        )
