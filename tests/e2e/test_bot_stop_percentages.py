"""A bot's take-profit and stop-loss percentages, set through the ledger's API, become stop orders on the
paper venue at prices computed from the executed entry, and their ids reach the ledger's position."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from e2e_helpers import intent_row, paper_mark_price, position_in, post_signal

from egis_common.ids import OrderPurpose, client_order_id
from egis_localinfra.testing import eventually
from egis_venues.paper import tables as paper_tables

pytestmark = pytest.mark.infra
D = Decimal
ENTRY_MARK = D("2942.67")


async def paper_stops(executor, account: str) -> list[sa.Row]:
    query = sa.select(paper_tables.stops).where(paper_tables.stops.c.account == account)
    async with executor.runtime.engine.connect() as conn:
        return list((await conn.execute(query.order_by(paper_tables.stops.c.algo_id))).all())


async def test_a_bots_percentages_become_stops_at_prices_from_the_executed_entry(
    create_bot, gateway, ledger_runtime, executor, producer
):
    bot, secret = await create_bot(
        "paper", f"paper-{uuid.uuid4().hex[:8]}", default_order_size_usd="10", take_profit_pct="2", stop_loss_pct="1"
    )
    await paper_mark_price(producer, executor, "ETHUSDT", ENTRY_MARK)

    opening = await post_signal(gateway, bot, secret, "buy")  # a signal without TP or SL prices

    async def both_ids():
        position = await position_in(ledger_runtime, bot["bot_id"], "open")
        return position if position.tp_order_id and position.sl_order_id else None

    position = await eventually(both_ids, timeout=30, what="both stop ids on the ledger's position")
    tp_id = client_order_id(opening, OrderPurpose.TAKE_PROFIT)
    sl_id = client_order_id(opening, OrderPurpose.STOP_LOSS)
    assert (position.avg_entry_price, position.tp_order_id, position.sl_order_id) == (ENTRY_MARK, tp_id, sl_id)
    intent = await intent_row(executor.runtime, opening)
    assert (intent.take_profit_price, intent.stop_loss_price, intent.take_profit_pct, intent.stop_loss_pct) == (
        None,
        None,
        D("2"),
        D("1"),
    )
    # 2942.67 x 1.02 = 3001.5234, down to the tick; 2942.67 x 0.99 = 2913.2433, up to the tick.
    stops = {s.client_algo_id: s for s in await paper_stops(executor, bot["exchange_account"])}
    assert {(s.kind, s.side, s.trigger_price, s.status) for s in stops.values()} == {
        ("TAKE_PROFIT_MARKET", "SELL", D("3001.52"), "NEW"),
        ("STOP_MARKET", "SELL", D("2913.25"), "NEW"),
    }
    assert (stops[tp_id].kind, stops[sl_id].kind) == ("TAKE_PROFIT_MARKET", "STOP_MARKET")

    await post_signal(gateway, bot, secret, "exit")  # flat again, so the stops expire and leave nothing behind
    await position_in(ledger_runtime, bot["bot_id"], "closed")
