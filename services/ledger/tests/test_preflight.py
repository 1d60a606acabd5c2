"""Preflight, executions and backfill through real Kafka and Postgres, asserting rows and messages."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ledger_helpers import answer_to, budget, fill_for, open_position, position_rows, reserve, send

from egis_common import contracts as c
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually

pytestmark = pytest.mark.infra


async def test_budget_without_positions_is_the_initial_budget(ledger_runtime, ledger, make_bot):
    bot = await make_bot("75")
    assert await budget(ledger, ledger_runtime, bot.bot_id) == type(await budget(ledger, ledger_runtime, bot.bot_id))(
        Decimal("75"), Decimal("0"), Decimal("0"), Decimal("75")
    )


async def test_executed_size_is_authoritative_and_requested_size_is_kept(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot = await make_bot("100")
    row, _ = await open_position(ledger_runtime, ledger_events, bot)
    assert row.size_usd == Decimal("8.82801")
    assert row.requested_size_usd == Decimal("10")
    assert row.executed_qty == Decimal("0.003") and row.avg_entry_price == Decimal("2942.67")
    after = await budget(ledger, ledger_runtime, bot.bot_id)
    assert after.available_usd == Decimal("100") - Decimal("8.82801") == Decimal("91.17199")
    # Polled: one read of the session's event reader may stop short of the event behind earlier tests' events.
    opened = await eventually(
        lambda: ledger_events.matching(lambda m: isinstance(m, c.PositionOpened) and m.position_id == row.position_id),
        what="PositionOpened",
    )
    assert opened[0].size_usd == Decimal("8.82801")


async def test_a_close_without_an_open_position_is_rejected_and_creates_nothing(
    ledger_runtime, make_bot, ledger_events
):
    bot = await make_bot()
    command = reserve(bot.bot_id, intent=c.IntentKind.CLOSE, account=bot.exchange_account)
    await send(ledger_runtime, command)
    answer = await answer_to(ledger_events, command.intent_id)
    assert isinstance(answer, c.PreflightRejected)
    assert answer.reason is c.PreflightRejectReason.NO_OPEN_POSITION_TO_CLOSE
    assert await position_rows(ledger_runtime, bot.bot_id) == []


async def test_a_second_open_for_the_same_symbol_is_rejected_and_the_budget_is_unchanged(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot = await make_bot("100")
    await open_position(ledger_runtime, ledger_events, bot)
    before = await budget(ledger, ledger_runtime, bot.bot_id)
    again = reserve(bot.bot_id, "ETHUSDT", account=bot.exchange_account)
    await send(ledger_runtime, again)
    answer = await answer_to(ledger_events, again.intent_id)
    assert answer.reason is c.PreflightRejectReason.EXISTING_OPEN_POSITION
    assert await budget(ledger, ledger_runtime, bot.bot_id) == before
    assert len(await position_rows(ledger_runtime, bot.bot_id)) == 1


async def test_fifty_opens_through_kafka_reserve_exactly_what_the_budget_allows(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot = await make_bot("75")
    commands = [reserve(bot.bot_id, f"S{i:02d}USDT", "10", account=bot.exchange_account) for i in range(50)]
    await send(ledger_runtime, *commands)
    answers = [await answer_to(ledger_events, command.intent_id) for command in commands]
    reserved = [a for a in answers if isinstance(a, c.BudgetReserved)]
    rejected = [a for a in answers if isinstance(a, c.PreflightRejected)]
    assert len(reserved) == 7 and len(rejected) == 43
    assert {a.reason for a in rejected} == {c.PreflightRejectReason.INSUFFICIENT_BUDGET}
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("5")
    assert len(await position_rows(ledger_runtime, bot.bot_id)) == 7


async def test_fifty_truly_concurrent_transactions_never_overspend(ledger_runtime, ledger, make_bot):
    """No Kafka ordering to help: 50 transactions race on one bot in Postgres."""
    bot = await make_bot("75")

    async def one(i: int):
        async with ledger_runtime.uow.begin() as conn:
            return await ledger.reserve(conn, reserve(bot.bot_id, f"C{i:02d}USDT", "10", account=bot.exchange_account))

    outcomes = await asyncio.gather(*(one(i) for i in range(50)))
    assert sum(1 for o in outcomes if o.rejection is None) == 7
    assert sum(1 for o in outcomes if o.rejection is c.PreflightRejectReason.INSUFFICIENT_BUDGET) == 43
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("5")


async def test_the_same_intent_gets_the_same_answer_and_changes_nothing(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot = await make_bot("100")
    command = reserve(bot.bot_id, account=bot.exchange_account)
    retry = command.model_copy(update={"message_id": uuid.uuid4()})  # the executor asking again
    await send(ledger_runtime, command, command, retry)

    async def three_answers():
        found = await ledger_events.matching(
            lambda m: getattr(m, "intent_id", None) == command.intent_id and isinstance(m, c.BudgetReserved)
        )
        return found if len(found) >= 2 else None

    answers = await eventually(three_answers, what="answers to the original and the retry")
    assert len({a.position_id for a in answers}) == 1
    assert len(await position_rows(ledger_runtime, bot.bot_id)) == 1
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("90")


async def test_many_small_sizes_sum_exactly(ledger_runtime, ledger, make_bot, ledger_events):
    ledger = dataclasses.replace(ledger, min_order_size_usd=Decimal("0.01"))
    bot = await make_bot("1")
    size = Decimal("0.1")  # 0.1 has no exact binary float: a float sum of ten is 0.9999999999999999
    commands = [reserve(bot.bot_id, f"M{i:02d}USDT", str(size), account=bot.exchange_account) for i in range(11)]
    async with ledger_runtime.uow.begin() as conn:
        outcomes = [await ledger.reserve(conn, command) for command in commands]
    assert [o.rejection for o in outcomes].count(None) == 10  # 10 x 0.1 = exactly 1
    assert outcomes[-1].rejection is c.PreflightRejectReason.INSUFFICIENT_BUDGET
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("0")


async def test_close_fill_closes_with_every_close_fact_and_releases_budget(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot = await make_bot("100")
    row, _ = await open_position(ledger_runtime, ledger_events, bot)
    close = reserve(bot.bot_id, intent=c.IntentKind.CLOSE, account=bot.exchange_account)
    await send(ledger_runtime, close)
    answer = await answer_to(ledger_events, close.intent_id)
    assert isinstance(answer, c.BudgetReserved) and answer.close_qty == Decimal("0.003")
    await send(ledger_runtime, fill_for(answer, "0.003", "3000"))

    async def closed():
        return [r for r in await position_rows(ledger_runtime, bot.bot_id) if r.status == "closed"]

    (final,) = await eventually(closed, what="position closed")
    assert final.close_price == Decimal("3000")
    assert final.realised_pnl_usd == (Decimal("3000") - Decimal("2942.67")) * Decimal("0.003") == Decimal("0.17199")
    assert final.fee_usd == Decimal("0.0070") and final.closed_at is not None and final.close_exchange_order_id
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("100")


async def test_rejection_releases_the_reservation(ledger_runtime, ledger, make_bot, ledger_events):
    bot = await make_bot("100")
    command = reserve(bot.bot_id, account=bot.exchange_account)
    await send(ledger_runtime, command)
    answer = await answer_to(ledger_events, command.intent_id)
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).reserved_opening_usd == Decimal("10")
    await send(
        ledger_runtime,
        c.OrderRejected(
            intent_id=answer.intent_id,
            bot_id=bot.bot_id,
            position_id=answer.position_id,
            intent=c.IntentKind.OPEN,
            client_order_id="x",
            exchange_code="-2019",
            reason="Margin is insufficient.",
        ),
    )

    async def failed():
        return [r for r in await position_rows(ledger_runtime, bot.bot_id) if r.status == "failed"]

    (row,) = await eventually(failed, what="position failed")
    assert "-2019" in row.failure_reason
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("100")


async def test_a_partial_fill_records_the_executed_part_only(ledger_runtime, ledger, make_bot, ledger_events):
    bot = await make_bot("100")
    row, _ = await open_position(ledger_runtime, ledger_events, bot, size="10", qty="0.002", price="3000")
    assert row.size_usd == Decimal("6.000") and row.requested_size_usd == Decimal("10")
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("94")


async def test_a_fill_found_by_the_reconciler_opens_the_position_exactly_once(
    ledger_runtime, ledger, make_bot, ledger_events
):
    bot = await make_bot("100")
    command = reserve(bot.bot_id, account=bot.exchange_account)
    async with ledger_runtime.uow.begin() as conn:
        reserved = (await ledger.reserve(conn, command)).created[0]
    found = c.ApplyFoundFill(
        bot_id=bot.bot_id,
        intent_id=command.intent_id,
        position_id=reserved.position_id,
        intent=c.IntentKind.OPEN,
        client_order_id=client_order_id(command.intent_id),
        exchange_order_id="777",
        executed_qty=Decimal("0.003"),
        avg_price=Decimal("2942.67"),
        fee_usd=Decimal("0.0035"),
        filled_at=datetime.now(UTC),
        evidence={"looked_up": "by client order id"},
    )
    await send(ledger_runtime, found, found.model_copy(update={"message_id": uuid.uuid4()}))

    async def opened():
        return [r for r in await position_rows(ledger_runtime, bot.bot_id) if r.status == "open"]

    (row,) = await eventually(opened, what="found fill applied")
    assert (row.size_usd, row.open_exchange_order_id) == (Decimal("8.82801"), "777")
    assert (await budget(ledger, ledger_runtime, bot.bot_id)).available_usd == Decimal("91.17199")
