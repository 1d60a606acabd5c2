"""A close the venue certainly did not execute is sent again, same client order id, until it fills or its time
is up; the ledger keeps the position `closing` meanwhile and hears only the end. An open is still refused at once.

Real Kafka, Postgres and ledger; the periodic job is driven here (`handlers.resend_closes`, as main.py runs it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from executor_helpers import (
    close_intent,
    intent_in,
    intent_row,
    of,
    open_intent,
    paper_orders,
    pending_record,
    position_in,
    positions,
    publish,
)
from prometheus_client import REGISTRY

from egis_binance_local import BinanceLocal
from egis_common import contracts as c
from egis_common.contracts import ExchangeName
from egis_localinfra.testing import eventually
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.port import Unknown
from egis_venues.settings import BinanceCredentials
from executor.domain import ResendPolicy
from executor.handlers import resend_closes

pytestmark = pytest.mark.infra
D = Decimal
API_KEY, API_SECRET = "egis-test-key", "egis-test-secret"
QUICKLY = ResendPolicy(300, lambda attempts: 0.2)  # no need to wait seconds between attempts here


class Unavailable:
    """The paper venue's database refuses connections while `on`: a booking is refused (nothing placed)."""

    def __init__(self, monkeypatch, executor) -> None:
        from egis_venues.paper import booking

        self.on, self._book = False, booking.book
        monkeypatch.setattr(booking, "book", self.book)
        quick = executor.paper.settings.model_copy(update={"booking_retry_seconds": 0.3})
        monkeypatch.setattr(executor.paper, "settings", quick)

    async def book(self, *args, **kwargs):
        if self.on:
            raise ConnectionRefusedError(111, "injected: Connect call failed")
        return await self._book(*args, **kwargs)


class LosesTheFirstOrders:
    """Answers the first `times` placements of a client order id with a 5xx, never booking them: the venue never
    got them (a hand-written stub around the paper venue)."""

    def __init__(self, venue, times: int) -> None:
        self.venue, self.times, self.seen = venue, times, {}

    def __getattr__(self, name):
        return getattr(self.venue, name)

    async def place_market_order(self, order):
        self.seen[order.client_order_id] = self.seen.get(order.client_order_id, 0) + 1
        if self.seen[order.client_order_id] <= self.times:
            return Unknown("http_500_code_-1000", {"status": 500})
        return await self.venue.place_market_order(order)


@pytest.fixture
def unavailable(monkeypatch, executor) -> Unavailable:
    return Unavailable(monkeypatch, executor)


@pytest.fixture
def policy(executor):
    """The resend policy of the module's executor, set for one test."""
    submission = executor.wiring.executor.submission
    held = submission.resend

    def set_to(policy: ResendPolicy) -> None:
        submission.resend = policy

    set_to(QUICKLY)
    yield set_to
    submission.resend = held


async def opened(executor, producer, bot, symbol="ETHUSDT"):
    await publish(producer, open_intent(bot, symbol))
    return await position_in(executor.engine, bot.bot_id, "open")


async def resent_until(executor, intent_id, *statuses: str, timeout: float = 20):
    """Run the periodic job until the intent is in one of `statuses`."""

    async def probe():
        await resend_closes(executor.wiring.executor, 50)
        row = await intent_row(executor.engine, intent_id)
        return row if row.status in statuses else None

    return await eventually(probe, timeout=timeout, interval=0.1, what=f"intent {intent_id} in {statuses}")


def not_found_after_window(intent_id, bot_id) -> c.RecordResolution:
    return c.RecordResolution(
        intent_id=intent_id,
        bot_id=bot_id,
        resolution="not_found_after_window",
        resolved_by="auto",
        resolved_at=datetime.now(UTC),
        evidence={"window_s": "20.0"},
    )


async def test_a_close_refused_while_the_paper_venue_is_unavailable_fills_when_sent_again(
    executor, producer, make_bot, tail, unavailable, policy
):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    await opened(executor, producer, bot)
    unavailable.on = True
    close = close_intent(bot)
    await publish(producer, close)
    waiting = await intent_in(executor.engine, close.intent_id, "resend_due")
    assert waiting.send_attempts == 1 and waiting.resend_at is not None
    assert "paper_venue_unavailable" in waiting.detail
    assert [p.status for p in await positions(executor.engine, bot.bot_id)] == ["closing"]  # the ledger heard nothing
    unavailable.on = False
    resent_filled = {"exchange": "paper", "outcome": "filled"}
    before = REGISTRY.get_sample_value("egis_executor_close_resends_total", resent_filled) or 0
    row = await resent_until(executor, close.intent_id, "filled")
    assert row.send_attempts == 2 and row.exchange_code is None
    assert REGISTRY.get_sample_value("egis_executor_close_resends_total", resent_filled) == before + 1
    orders = [
        o for o in await paper_orders(executor.engine, bot.exchange_account) if o.client_order_id == row.client_order_id
    ]
    assert len(orders) == 1 and str(orders[0].order_id) == row.exchange_order_id  # one order on the venue
    closed = await position_in(executor.engine, bot.bot_id, "closed")
    assert (closed.close_exchange_order_id, closed.close_price) == (row.exchange_order_id, row.avg_price)
    assert await tail.matching(of(c.OrderRejected, intent_id=close.intent_id)) == []


async def test_a_pending_close_the_venue_never_got_is_sent_again_and_fills(executor, producer, make_bot, tail, policy):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    await opened(executor, producer, bot)
    losing = LosesTheFirstOrders(executor.paper, times=2)
    executor.wiring.exchanges[ExchangeName.PAPER] = losing
    try:
        close = close_intent(bot)
        await publish(producer, close)
        await intent_in(executor.engine, close.intent_id, "pending_reconciliation")
        await publish(producer, not_found_after_window(close.intent_id, bot.bot_id))
        await intent_in(executor.engine, close.intent_id, "resend_due")
        assert (await pending_record(executor.engine, close.intent_id)).resolution == "not_found_after_window"
        # Sent again, and lost again: pending once more, its record open again for the reconciler.
        await resent_until(executor, close.intent_id, "pending_reconciliation")
        record = await pending_record(executor.engine, close.intent_id)
        assert record.resolved_at is None and record.resolution is None and record.cause.startswith("http_500")
        await publish(producer, not_found_after_window(close.intent_id, bot.bot_id))
        await intent_in(executor.engine, close.intent_id, "resend_due")
        row = await resent_until(executor, close.intent_id, "filled")
    finally:
        executor.wiring.exchanges[ExchangeName.PAPER] = losing.venue
    assert row.send_attempts == 3 and losing.seen[row.client_order_id] == 3
    orders = [
        o for o in await paper_orders(executor.engine, bot.exchange_account) if o.client_order_id == row.client_order_id
    ]
    assert len(orders) == 1
    closed = await position_in(executor.engine, bot.bot_id, "closed")
    assert closed.close_exchange_order_id == row.exchange_order_id
    await tail.wait_for(of(c.OrderPendingReconciliation, intent_id=close.intent_id), count=2)


async def test_an_open_in_the_same_situations_is_still_rejected_and_its_reservation_released(
    executor, producer, make_bot, tail, unavailable, policy
):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    unavailable.on = True
    refused = open_intent(bot)
    await publish(producer, refused)
    row = await intent_in(executor.engine, refused.intent_id, "rejected")
    assert row.exchange_code == "paper_venue_unavailable" and row.send_attempts == 1
    await position_in(executor.engine, bot.bot_id, "failed")
    unavailable.on = False
    await resend_closes(executor.wiring.executor, 50)
    assert (await intent_row(executor.engine, refused.intent_id)).status == "rejected"
    assert len(await paper_orders(executor.engine, bot.exchange_account)) == 0

    other = await make_bot("100")
    losing = LosesTheFirstOrders(executor.paper, times=1)
    executor.wiring.exchanges[ExchangeName.PAPER] = losing
    try:
        lost = open_intent(other)
        await publish(producer, lost)
        await intent_in(executor.engine, lost.intent_id, "pending_reconciliation")
        await publish(producer, not_found_after_window(lost.intent_id, other.bot_id))
        row = await intent_in(executor.engine, lost.intent_id, "rejected")
    finally:
        executor.wiring.exchanges[ExchangeName.PAPER] = losing.venue
    assert row.exchange_code == "not_found_after_window"
    assert await tail.matching(of(c.OrderRejected, intent_id=lost.intent_id)) == []  # the reconciler releases an open


async def test_a_close_still_not_executed_when_its_time_is_up_is_rejected_and_the_position_reopened(
    executor, producer, make_bot, tail, unavailable, policy
):
    policy(ResendPolicy(2.0, lambda attempts: 0.2))
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    await opened(executor, producer, bot)
    unavailable.on = True
    close = close_intent(bot)
    await publish(producer, close)
    await intent_in(executor.engine, close.intent_id, "resend_due")
    row = await resent_until(executor, close.intent_id, "rejected")
    assert row.exchange_code == "paper_venue_unavailable" and row.send_attempts > 1
    (rejected,) = await tail.wait_for(of(c.OrderRejected, intent_id=close.intent_id))
    assert rejected.exchange_code == "paper_venue_unavailable"
    reopened = await position_in(executor.engine, bot.bot_id, "open")
    assert reopened.close_intent_id is None
    assert [
        o for o in await paper_orders(executor.engine, bot.exchange_account) if o.client_order_id == row.client_order_id
    ] == []


@pytest.fixture
async def binance(executor) -> AsyncIterator[BinanceLocal]:
    """A local Binance server behind the executor; the adapter gives up resending itself after 0.5 s."""
    async with BinanceLocal() as server:
        server.add_account(API_KEY, API_SECRET, usdt="100000")
        adapter = BinanceExchange(
            {"main": BinanceCredentials(api_key=API_KEY, api_secret=API_SECRET)},
            base_url=server.base_url,
            request_timeout_s=2.0,
            resend_within_s=0.5,
        )
        executor.wiring.exchanges[ExchangeName.BINANCE_USDM] = adapter
        try:
            yield server
        finally:
            del executor.wiring.exchanges[ExchangeName.BINANCE_USDM]
            await adapter.close()


async def test_a_binance_close_rate_limited_past_the_adapters_window_is_sent_after_retry_after_and_fills(
    executor, producer, make_bot, binance, policy
):
    bot = await make_bot("100000", exchange=ExchangeName.BINANCE_USDM, account="main")
    await publish(producer, open_intent(bot, "BTCUSDT", size="500"))
    await position_in(executor.engine, bot.bot_id, "open")
    binance.inject_fault("http_429", count=1, method="POST", path="/fapi/v1/order", retry_after_s=1)
    close = close_intent(bot, "BTCUSDT")
    await publish(producer, close)
    waiting = await intent_in(executor.engine, close.intent_id, "resend_due")
    assert (waiting.resend_at - waiting.updated_at).total_seconds() >= 0.9  # the venue's Retry-After, not 0.2 s
    row = await resent_until(executor, close.intent_id, "filled")
    placed = [o for o in binance.orders(API_KEY) if o.client_order_id == row.client_order_id]
    assert len(placed) == 1 and row.send_attempts == 2
    closed = await position_in(executor.engine, bot.bot_id, "closed")
    assert closed.close_exchange_order_id == row.exchange_order_id
