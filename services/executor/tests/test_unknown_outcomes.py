"""Unknown outcomes: the order may exist, so it goes to reconciliation and is never sent again.

And an outcome the exchange did return is not lost to a database that is unavailable for a while.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import (
    consumed,
    intent_in,
    of,
    open_intent,
    paper_orders,
    pending_record,
    position_in,
    positions,
    publish,
)

from egis_common import contracts as c
from egis_common.contracts import ExchangeName
from egis_venues.port import Filled, Unknown
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


class FailingCommits:
    """Makes the transaction that records an exchange outcome fail for chosen intents, a number of times."""

    def __init__(self) -> None:
        self.planned: dict = {}  # intent id -> [fault, failures left]
        self.failures: dict = {}  # intent id -> failures injected

    def fail(self, intent_id, fault, times: float = math.inf) -> None:
        self.planned[intent_id] = [fault, times]

    async def __call__(self, conn, made) -> None:
        for decision in made:
            plan = self.planned.get(decision.intent.intent_id) if decision.intent is not None else None
            if plan is not None and plan[1] > 0:
                plan[1] -= 1
                self.failures[decision.intent.intent_id] = self.failures.get(decision.intent.intent_id, 0) + 1
                await plan[0](conn)


async def refused(conn) -> None:
    raise ConnectionRefusedError("injected: the database refused the connection")


async def terminated(conn) -> None:
    """Postgres itself ends the transaction's session, as a database restart would."""
    await conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))


async def broken(conn) -> None:
    raise RuntimeError("injected: the outcome cannot be recorded, whatever the database's health")


@pytest.fixture
def failing_commits(executor):
    submission = executor.wiring.executor.submission
    commits = FailingCommits()
    submission.before_outcome_commit = commits
    yield commits
    submission.before_outcome_commit = None


async def redeliver_reservation(infra, producer, tail, intent_id) -> None:
    (answer,) = await tail.wait_for(of(c.BudgetReserved, intent_id=intent_id))
    await consumed(infra.kafka_bootstrap, ANSWERS_GROUP, await publish(producer, answer, answer))


async def test_an_accepted_order_whose_recording_fails_goes_pending_once_and_keeps_the_reservation(
    executor, producer, make_bot, tail, failing_commits, infra
):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    intent = open_intent(bot)
    failing_commits.fail(intent.intent_id, broken)
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


@pytest.mark.parametrize(("fault", "times"), [(refused, 3), (terminated, 2)], ids=["refused", "terminated"])
async def test_an_outcome_is_recorded_once_the_database_is_back_and_the_order_is_sent_once(
    executor, producer, make_bot, tail, failing_commits, fault, times
):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    intent = open_intent(bot)
    failing_commits.fail(intent.intent_id, fault, times)
    await publish(producer, intent)
    row = await intent_in(executor.engine, intent.intent_id, "filled")
    assert failing_commits.failures[intent.intent_id] == times
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    assert (row.exchange_order_id, row.executed_qty) == (str(order.order_id), D("0.003"))
    assert await pending_record(executor.engine, intent.intent_id) is None
    position = await position_in(executor.engine, bot.bot_id, "open")
    assert position.open_exchange_order_id == str(order.order_id)
    (filled,) = await tail.wait_for(of(c.OrderFilled, intent_id=intent.intent_id))
    assert filled.exchange_order_id == str(order.order_id)
    assert await tail.matching(of(c.OrderPendingReconciliation, intent_id=intent.intent_id)) == []


async def test_a_database_unavailable_for_longer_than_the_retries_leaves_the_outcome_pending_with_its_evidence(
    executor, producer, make_bot, tail, failing_commits
):
    submission = executor.wiring.executor.submission
    held, submission.outcome_retry_seconds = submission.outcome_retry_seconds, 1.0
    try:
        bot = await make_bot("100")
        await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
        intent = open_intent(bot)
        failing_commits.fail(intent.intent_id, refused)
        await publish(producer, intent)
        await intent_in(executor.engine, intent.intent_id, "pending_reconciliation")
    finally:
        submission.outcome_retry_seconds = held
    assert failing_commits.failures[intent.intent_id] > 2  # retried, then once alone
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    record = await pending_record(executor.engine, intent.intent_id)
    assert record.cause == "recording_failed" and "ConnectionRefusedError" in record.exchange_response["error"]
    assert record.exchange_response["exchange_order_id"] == str(order.order_id)
    assert [p.status for p in await positions(executor.engine, bot.bot_id)] == ["opening"]


async def test_an_order_left_pending_ends_filled_once_the_reconciler_records_the_fill_it_found(
    executor, producer, make_bot, failing_commits
):
    bot = await make_bot("100")
    await executor.paper.set_mark_price("ETHUSDT", D("2942.67"))
    intent = open_intent(bot)
    failing_commits.fail(intent.intent_id, broken)
    await publish(producer, intent)
    row = await intent_in(executor.engine, intent.intent_id, "pending_reconciliation")
    found = await executor.paper.find_order(bot.exchange_account, "ETHUSDT", row.client_order_id)
    fill = c.FoundFill(
        exchange_order_id=found.exchange_order_id,
        executed_qty=found.executed_qty,
        avg_price=found.avg_price,
        fee_usd=found.fee_usd,
        filled_at=found.filled_at,
    )
    await publish(
        producer,
        c.RecordResolution(
            intent_id=intent.intent_id,
            bot_id=bot.bot_id,
            resolution="found_filled",
            resolved_by="auto",
            resolved_at=datetime.now(UTC),
            fill=fill,
            evidence={"client_order_id": row.client_order_id},
        ),
    )
    row = await intent_in(executor.engine, intent.intent_id, "filled")
    (order,) = await paper_orders(executor.engine, bot.exchange_account)
    assert (row.exchange_order_id, row.executed_qty, row.avg_price) == (str(order.order_id), D("0.003"), D("2942.67"))
    record = await pending_record(executor.engine, intent.intent_id)
    assert record.cause == "recording_failed" and record.resolution == "found_filled" and record.resolved_at
