"""The paper venue through the exchange port, on its own tables: what a caller and the reconciler see."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import rows, unique_symbol

from egis_common import contracts as c
from egis_common.topics import EXCHANGE_FACTS
from egis_venues.paper import NoMarkPrice, PaperExchange, UnknownSymbol
from egis_venues.port import Filled, MarketOrder, NotFound, OrderSide, Rejected, StopOrder, StopPlaced
from executor.settings import PaperSettings

pytestmark = pytest.mark.infra
D = Decimal


def venue(executor, **settings) -> PaperExchange:
    return PaperExchange(executor.runtime.uow, executor.runtime.outbox, PaperSettings(**settings))


def buy(symbol: str, qty: str, account: str | None = None, side=OrderSide.BUY, reduce_only=False) -> MarketOrder:
    return MarketOrder(
        account or f"acct-{uuid.uuid4().hex[:8]}", symbol, side, D(qty), f"ego-{uuid.uuid4().hex}", reduce_only
    )


async def facts_of(executor, account: str) -> list[c.Message]:
    outbox = executor.runtime.outbox.table
    found = await rows(
        executor.engine,
        sa.select(outbox.c.payload)
        .where(outbox.c.topic == EXCHANGE_FACTS.name, outbox.c.key == account.encode())
        .order_by(outbox.c.id),
    )
    return [EXCHANGE_FACTS.decode(bytes(r.payload)) for r in found]


async def test_an_order_is_found_by_its_client_order_id_and_a_missing_one_is_not(executor):
    paper, symbol = venue(executor), unique_symbol()
    await paper.set_mark_price(symbol, D("50"))
    order = buy(symbol, "0.2")
    placed = await paper.place_market_order(order)
    found = await paper.find_order(order.account, symbol, order.client_order_id)
    assert isinstance(placed, Filled) and found == placed
    assert await paper.find_order(order.account, symbol, "ego-never-sent") == NotFound()


async def test_a_partial_fill_expires_the_rest_and_reports_what_executed(executor):
    paper, symbol = venue(executor, fill_ratio=D("0.5")), unique_symbol()
    await paper.set_mark_price(symbol, D("50"))
    order = buy(symbol, "0.3")
    filled = await paper.place_market_order(order)
    assert filled.executed_qty == D("0.150") and filled.avg_price == D("50")
    (order_fact, trade_fact) = await facts_of(executor, order.account)
    assert (order_fact.status, order_fact.orig_qty, order_fact.executed_qty) == ("EXPIRED", D("0.300"), D("0.150"))
    assert trade_fact.qty == D("0.150")
    assert await paper.position(order.account, symbol) == (D("0.150"), D("50"))


async def test_fees_and_slippage_come_from_settings(executor):
    paper, symbol = venue(executor, taker_fee_rate=D("0.001"), slippage_bps=D("50")), unique_symbol()
    await paper.set_mark_price(symbol, D("100"))
    filled = await paper.place_market_order(buy(symbol, "1"))
    assert (filled.avg_price, filled.fee_usd) == (D("100.50"), D("0.10050000"))


async def test_unknown_symbols_and_missing_mark_prices_are_refused(executor):
    strict = venue(executor, other_symbols=None)
    assert (await strict.place_market_order(buy(unique_symbol(), "1"))).code == "-1121"
    with pytest.raises(UnknownSymbol):
        await strict.symbol_rules(unique_symbol())
    with pytest.raises(NoMarkPrice):
        await venue(executor).mark_price(unique_symbol())
    assert (await venue(executor).place_market_order(buy(unique_symbol(), "1"))).code == "no_mark_price"


async def test_mark_prices_asked_for_together_each_get_their_own_symbols_price(executor):
    paper, symbols = venue(executor), [unique_symbol() for _ in range(4)]
    for price, symbol in enumerate(symbols[:3], start=1):
        await paper.set_mark_price(symbol, D(f"{price}.5"))
    asked = await asyncio.gather(*(paper.mark_price(symbol) for symbol in symbols), return_exceptions=True)
    assert asked[:3] == [D("1.5"), D("2.5"), D("3.5")]
    assert isinstance(asked[3], NoMarkPrice), "one symbol without a price fails alone"


async def test_a_late_older_mark_price_does_not_replace_a_newer_one(executor):
    paper, symbol, now = venue(executor), unique_symbol(), datetime.now(UTC)
    await paper.set_mark_price(symbol, D("101"), now)
    await paper.set_mark_price(symbol, D("99"), now - timedelta(seconds=1))
    assert await paper.mark_price(symbol) == D("101")


async def test_a_stop_that_would_trigger_at_once_is_refused_and_a_duplicate_open_one_too(executor):
    paper, symbol = venue(executor), unique_symbol()
    await paper.set_mark_price(symbol, D("100"))
    order = buy(symbol, "0.1")
    await paper.place_market_order(order)
    stop = StopOrder(order.account, symbol, OrderSide.SELL, "STOP_MARKET", D("101"), f"egs-{uuid.uuid4().hex}")
    assert await paper.place_stop(stop) == Rejected("-2021", "Order would immediately trigger.")
    fine = StopOrder(order.account, symbol, OrderSide.SELL, "STOP_MARKET", D("95"), stop.client_algo_id)
    assert isinstance(await paper.place_stop(fine), StopPlaced)
    assert (await paper.place_stop(fine)).code == "-4116"


async def test_a_stop_loss_closes_a_short_with_a_buy_and_the_loss_is_in_the_trade(executor):
    paper, symbol = venue(executor), unique_symbol()
    await paper.set_mark_price(symbol, D("100"))
    short = buy(symbol, "0.1", side=OrderSide.SELL)
    await paper.place_market_order(short)
    stop = StopOrder(short.account, symbol, OrderSide.BUY, "STOP_MARKET", D("105"), f"egs-{uuid.uuid4().hex}")
    placed = await paper.place_stop(stop)
    await paper.set_mark_price(symbol, D("104.99"))
    assert await paper.position(short.account, symbol) == (D("-0.1"), D("100"))
    await paper.set_mark_price(symbol, D("106"))
    assert (await paper.position(short.account, symbol))[0] == 0
    algo = [f for f in await facts_of(executor, short.account) if isinstance(f, c.ExchangeAlgoOrderFact)]
    assert [(f.status, f.algo_id) for f in algo] == [(s, placed.algo_id) for s in ("NEW", "TRIGGERED", "FINISHED")]
    (trade,) = [
        f
        for f in await facts_of(executor, short.account)
        if isinstance(f, c.ExchangeTradeFact) and f.exchange_order_id == algo[-1].spawned_order_id
    ]
    assert trade.side == "BUY" and trade.realised_pnl_usd == D("-0.60000000")


class DroppingBookings:
    """The venue's database drops the connection under the first `drops` bookings, then books as usual."""

    def __init__(self, monkeypatch, drops: int, error: Exception) -> None:
        from egis_venues.paper import booking

        self.drops, self.error, self.calls, self._book = drops, error, 0, booking.book
        monkeypatch.setattr(booking, "book", self.book)

    async def book(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.drops:
            raise self.error
        return await self._book(*args, **kwargs)


async def test_a_booking_the_database_dropped_before_its_commit_is_booked_again_once(executor, monkeypatch):
    paper, symbol = venue(executor), unique_symbol()
    await paper.set_mark_price(symbol, D("50"))
    dropping = DroppingBookings(monkeypatch, 2, ConnectionResetError("connection reset by peer"))
    order = buy(symbol, "0.2")
    placed = await paper.place_market_order(order)
    assert isinstance(placed, Filled) and dropping.calls == 3
    found = await paper.find_order(order.account, symbol, order.client_order_id)
    assert found == placed
    assert await paper.position(order.account, symbol) == (D("0.200"), D("50")), "booked once"


async def test_a_booking_that_cannot_commit_is_refused_and_nothing_is_placed(executor, monkeypatch):
    paper, symbol = venue(executor, booking_retry_seconds=0.5), unique_symbol()
    await paper.set_mark_price(symbol, D("50"))
    DroppingBookings(monkeypatch, 10**6, ConnectionRefusedError(111, "Connect call failed"))
    order = buy(symbol, "0.2")
    refused = await paper.place_market_order(order)
    assert isinstance(refused, Rejected) and refused.code == "paper_venue_unavailable" and refused.not_processed
    assert await paper.find_order(order.account, symbol, order.client_order_id) == NotFound()


class LosingCommitAnswers:
    """The answer to the first booking's commit is lost: after the commit happened, or before it could."""

    def __init__(self, monkeypatch, *, committed: bool) -> None:
        from sqlalchemy.ext.asyncio import AsyncTransaction

        from egis_venues.paper import booking

        self.committed, self.lost, self.bookings = committed, 0, set()
        book, commit = booking.book, AsyncTransaction.commit

        async def marked_book(context, conn, orders):
            self.bookings.add(conn)
            return await book(context, conn, orders)

        async def losing_commit(transaction):
            if transaction.connection not in self.bookings or self.lost:
                return await commit(transaction)
            self.lost += 1
            if self.committed:
                await commit(transaction)
            raise ConnectionResetError(104, "Connection reset by peer")

        monkeypatch.setattr(booking, "book", marked_book)
        monkeypatch.setattr(AsyncTransaction, "commit", losing_commit)


@pytest.mark.parametrize("committed", [True, False], ids=["after_the_commit", "before_the_commit"])
async def test_a_booking_whose_commit_answer_was_lost_is_booked_exactly_once(executor, monkeypatch, committed):
    paper, symbol = venue(executor), unique_symbol()
    await paper.set_mark_price(symbol, D("50"))
    losing = LosingCommitAnswers(monkeypatch, committed=committed)
    order = buy(symbol, "0.2")
    placed = await paper.place_market_order(order)
    assert losing.lost == 1, "the fault was injected"
    assert isinstance(placed, Filled), placed
    assert await paper.find_order(order.account, symbol, order.client_order_id) == placed
    assert await paper.position(order.account, symbol) == (D("0.200"), D("50")), "booked once"
