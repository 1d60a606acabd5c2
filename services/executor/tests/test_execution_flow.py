"""Intents through the ledger and the paper exchange, on real Kafka and Postgres: rows and messages."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import (
    close_intent,
    intent_in,
    of,
    open_intent,
    paper_orders,
    position_in,
    positions,
    publish,
    rows,
    unique_symbol,
)

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from executor.adapters import repository as repo

pytestmark = pytest.mark.infra
D = Decimal


async def open_through_the_paper_exchange(executor, producer, bot, symbol="ETHUSDT", mark="2942.67", **extra):
    await executor.paper.set_mark_price(symbol, D(mark))
    intent = open_intent(bot, symbol, **extra)
    await publish(producer, intent)
    return intent, await position_in(executor.engine, bot.bot_id, "open")


async def test_an_intent_ends_as_an_open_position_with_the_size_the_exchange_executed(
    executor, producer, make_bot, tail
):
    bot = await make_bot("100")
    intent, position = await open_through_the_paper_exchange(executor, producer, bot)
    assert position.size_usd == D("8.82801") and position.requested_size_usd == D("10")
    assert (position.executed_qty, position.avg_entry_price) == (D("0.003"), D("2942.67"))
    row = await intent_in(executor.engine, intent.intent_id, "filled")
    assert row.client_order_id == client_order_id(intent.intent_id, OrderPurpose.ENTRY)
    assert (row.order_qty, row.position_id) == (D("0.003"), position.position_id)
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    assert (order.client_order_id, order.side, order.reduce_only, order.status) == (
        row.client_order_id,
        "BUY",
        False,
        "FILLED",
    )
    assert position.open_exchange_order_id == str(order.order_id)
    (filled,) = await tail.wait_for(of(c.OrderFilled, intent_id=intent.intent_id), what="OrderFilled")
    assert filled.fee_usd == D("0.00353120") == position.fee_usd
    trade = of(c.ExchangeTradeFact, exchange_account=bot.exchange_account)
    (fact,) = await tail.wait_for(trade, what="the trade as an exchange fact")
    assert (fact.qty, fact.price, fact.commission, fact.exchange_order_id) == (
        D("0.003"),
        D("2942.67"),
        D("0.00353120"),
        str(order.order_id),
    )
    await tail.wait_for(of(c.ExchangeOrderFact, exchange_account=bot.exchange_account, status="FILLED"))


async def test_closing_a_long_sells_reduce_only_and_closes_the_position_without_opening_a_short(
    executor, producer, make_bot, tail
):
    bot = await make_bot("100")
    await open_through_the_paper_exchange(executor, producer, bot)
    await executor.paper.set_mark_price("ETHUSDT", D("3000"))
    close = close_intent(bot)
    await publish(producer, close)
    closed = await position_in(executor.engine, bot.bot_id, "closed")
    assert closed.close_price == D("3000") and closed.realised_pnl_usd == D("0.17199")
    assert closed.fee_usd == D("0.00353120") + D("0.00360000")
    opening, closing = await paper_orders(executor.engine, bot.exchange_account)
    assert (closing.side, closing.reduce_only, closing.executed_qty) == ("SELL", True, D("0.003"))
    assert closed.close_exchange_order_id == str(closing.order_id)
    assert (await executor.paper.position(bot.exchange_account, "ETHUSDT"))[0] == 0  # flat: never short
    await intent_in(executor.engine, close.intent_id, "filled")


@pytest.mark.parametrize(
    "size, balance, code",
    [
        ("10", "1", "-2019"),  # insufficient margin on the paper account
        ("4", None, "-4164"),  # 0.001 ETH = 2.94 USD, below the 5 USD minimum notional
    ],
)
async def test_a_rejected_order_releases_the_reservation_and_records_the_code(
    executor, producer, make_bot, tail, size, balance, code
):
    bot = await make_bot("100")
    if balance is not None:
        await executor.paper.fund(bot.exchange_account, D(balance))
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    intent = open_intent(bot, "ETHUSDT", size)
    await publish(producer, intent)
    failed = await position_in(executor.engine, bot.bot_id, "failed")
    assert code in failed.failure_reason
    row = await intent_in(executor.engine, intent.intent_id, "rejected")
    assert row.exchange_code == code and row.detail
    assert await paper_orders(executor.engine, bot.exchange_account) == []
    (rejected,) = await tail.wait_for(of(c.OrderRejected, intent_id=intent.intent_id))
    assert rejected.exchange_code == code


async def test_a_symbol_without_a_mark_price_is_rejected_before_anything_is_sent(executor, producer, make_bot):
    bot = await make_bot("100")
    intent = open_intent(bot, unique_symbol())
    await publish(producer, intent)
    row = await intent_in(executor.engine, intent.intent_id, "rejected")
    assert row.exchange_code == "no_mark_price" and row.client_order_id is None
    assert "no_mark_price" in (await position_in(executor.engine, bot.bot_id, "failed")).failure_reason


async def test_a_preflight_rejection_skips_the_intent_with_the_ledgers_reason(executor, producer, make_bot):
    bot = await make_bot("5")
    intent = open_intent(bot, "ETHUSDT", "10")
    await publish(producer, intent)
    row = await intent_in(executor.engine, intent.intent_id, "skipped")
    assert row.skip_reason == "insufficient_budget"
    assert await paper_orders(executor.engine, bot.exchange_account) == []


async def test_an_exchange_without_an_adapter_is_skipped_before_any_reservation(executor, producer, make_bot, tail):
    bot = await make_bot("100", exchange=c.ExchangeName.BINANCE_USDM)
    intent = open_intent(bot)
    await publish(producer, intent)
    row = await intent_in(executor.engine, intent.intent_id, "skipped")
    assert row.skip_reason == "exchange_unavailable"
    assert await tail.matching(of(c.ReserveBudget, intent_id=intent.intent_id)) == []
    assert await positions(executor.engine, bot.bot_id) == []


async def test_a_filled_open_places_its_take_profit_and_stop_loss_and_a_mark_price_fires_them(
    executor, producer, make_bot, tail
):
    bot, symbol = await make_bot("100"), unique_symbol()
    intent, position = await open_through_the_paper_exchange(
        executor, producer, bot, symbol, mark="100", take_profit_price=D("110"), stop_loss_price=D("95")
    )
    placed = await tail.wait_for(
        of(c.ExchangeAlgoOrderFact, exchange_account=bot.exchange_account, status="NEW"),
        count=2,
        what="TP and SL placed",
    )
    assert {f.order_type for f in placed} == {"TAKE_PROFIT_MARKET", "STOP_MARKET"}
    await publish(producer, c.MarkPrice(symbol=symbol, price=D("110.5")))
    finished = of(c.ExchangeAlgoOrderFact, exchange_account=bot.exchange_account, status="FINISHED")
    (tp,) = await tail.wait_for(finished, what="the take-profit triggered")
    assert tp.order_type == "TAKE_PROFIT_MARKET" and tp.spawned_order_id
    (trade,) = await tail.wait_for(of(c.ExchangeTradeFact, exchange_order_id=tp.spawned_order_id))
    assert trade.side == "SELL" and trade.realised_pnl_usd == (D("110.5") - D("100")) * D("0.1")
    assert trade.commission == D("0.00442000")
    (sl,) = await tail.wait_for(of(c.ExchangeAlgoOrderFact, exchange_account=bot.exchange_account, status="EXPIRED"))
    assert sl.order_type == "STOP_MARKET"
    assert (await executor.paper.position(bot.exchange_account, symbol))[0] == 0
    table = repo.stop_orders
    stops = await rows(executor.engine, sa.select(table).where(table.c.intent_id == intent.intent_id))
    assert sorted((s.purpose, s.status, s.detail) for s in stops) == [
        ("stop_loss", "finished", "EXPIRED"),
        ("take_profit", "finished", "FINISHED"),
    ]
    # The ledger's position is closed by the reconciler from these facts, not by the executor.
    assert [p.status for p in await positions(executor.engine, bot.bot_id)] == ["open"]
