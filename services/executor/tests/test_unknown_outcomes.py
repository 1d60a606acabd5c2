"""Unknown outcomes: the order may exist, so it goes to reconciliation and is never sent again."""

from __future__ import annotations

from decimal import Decimal

import pytest
from executor_helpers import (
    consumed, intent_in, of, open_intent, paper_orders, pending_record, position_in, positions, publish,
)

from egis_common import contracts as c
from egis_common.contracts import ExchangeName
from executor.exchange import Filled, Unknown
from executor.flow import ANSWERS_GROUP

pytestmark = pytest.mark.infra
D = Decimal


class AcceptsThenTimesOut:
    """A venue that takes the order, then never answers in time (a hand-written stub around the paper venue)."""

    def __init__(self, venue) -> None:
        self.venue = venue

    def __getattr__(self, name):
        return getattr(self.venue, name)

    async def place_market_order(self, order):
        await self.venue.place_market_order(order)
        return Unknown("timeout", {"after_seconds": "10"})


@pytest.fixture
def failing_commit(executor):
    """Makes the transaction that records an exchange outcome fail for the given intents."""
    doomed: set = set()

    async def fail(made) -> None:
        if any(d.intent is not None and d.intent.intent_id in doomed for d in made):
            raise ConnectionError("injected: the database went away before the outcome was committed")

    executor.wiring.executor.submission.before_outcome_commit = fail
    yield doomed
    executor.wiring.executor.submission.before_outcome_commit = None


async def redeliver_reservation(infra, producer, tail, intent_id) -> None:
    (answer,) = await tail.wait_for(of(c.BudgetReserved, intent_id=intent_id))
    await consumed(infra.kafka_bootstrap, ANSWERS_GROUP, await publish(producer, answer, answer))


async def test_an_accepted_order_whose_recording_fails_goes_pending_once_and_keeps_the_reservation(
    executor, producer, make_bot, tail, failing_commit, infra
):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    intent = open_intent(bot)
    failing_commit.add(intent.intent_id)
    await publish(producer, intent)
    row = await intent_in(executor.engine, intent.intent_id, "pending_reconciliation")
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    record = await pending_record(executor.engine, intent.intent_id)
    assert record.cause == "recording_failed" and record.client_order_id == row.client_order_id == order.client_order_id
    assert record.exchange_response["exchange_order_id"] == str(order.order_id)
    assert record.exchange_response["executed_qty"] == "0.003" and "injected" in record.exchange_response["error"]
    assert record.intent["intent_id"] == str(intent.intent_id)
    (message,) = await tail.wait_for(of(c.OrderPendingReconciliation, intent_id=intent.intent_id))
    assert message.exchange_response["exchange_order_id"] == str(order.order_id)
    await redeliver_reservation(infra, producer, tail, intent.intent_id)
    assert len(await paper_orders(executor.engine, bot.exchange_account)) == 1
    assert [p.status for p in await positions(executor.engine, bot.bot_id)] == ["opening"]  # still reserved
    other = await make_bot("100")  # the consumer carried on
    await publish(producer, open_intent(other))
    await position_in(executor.engine, other.bot_id, "open")


async def test_a_timeout_after_the_venue_took_the_order_goes_pending_and_the_order_is_findable(
    executor, producer, make_bot, tail, infra
):
    executor.wiring.exchanges[ExchangeName.BINANCE_USDM] = AcceptsThenTimesOut(executor.paper)
    try:
        bot = await make_bot("100", exchange=ExchangeName.BINANCE_USDM)
        await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
        intent = open_intent(bot)
        await publish(producer, intent)
        row = await intent_in(executor.engine, intent.intent_id, "pending_reconciliation")
        await redeliver_reservation(infra, producer, tail, intent.intent_id)
    finally:
        del executor.wiring.exchanges[ExchangeName.BINANCE_USDM]
    assert (await pending_record(executor.engine, intent.intent_id)).cause == "timeout"
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    found = await executor.paper.find_order(bot.exchange_account, "ETHUSDT", row.client_order_id)
    assert isinstance(found, Filled) and found.exchange_order_id == str(order.order_id)
    assert [p.status for p in await positions(executor.engine, bot.bot_id)] == ["opening"]
    (message,) = await tail.wait_for(of(c.OrderPendingReconciliation, intent_id=intent.intent_id))
    assert message.cause == "timeout" and message.exchange is ExchangeName.BINANCE_USDM
