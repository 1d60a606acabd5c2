"""Every message of a full flow, delivered three more times, changes nothing anywhere."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from executor_helpers import close_intent, consumed, open_intent, position_in, publish, rows, unique_symbol

from egis_common import contracts as c
from egis_common.topics import EXECUTIONS, INTENTS, LEDGER_COMMANDS, LEDGER_EVENTS, MARK_PRICES
from executor.flow import ANSWERS_GROUP, INTENTS_GROUP, MARKS_GROUP

pytestmark = pytest.mark.infra
D = Decimal
CONSUMERS = {
    INTENTS.name: INTENTS_GROUP,
    LEDGER_EVENTS.name: ANSWERS_GROUP,
    MARK_PRICES.name: MARKS_GROUP,
    LEDGER_COMMANDS.name: "ledger",
    EXECUTIONS.name: "ledger",
}
STATE_TABLES = [
    f"executor.{name}"
    for name in (
        "intents",
        "pending_reconciliations",
        "stop_orders",
        "paper_accounts",
        "paper_positions",
        "paper_orders",
        "paper_trades",
        "paper_stop_orders",
        "paper_mark_prices",
        "outbox",
        "inbox",
    )
] + [f"ledger.{name}" for name in ("positions", "preflight_answers", "outbox", "inbox")]


async def state(engine) -> dict:
    """Every row of every table the flow touches (outboxes without their publication time)."""
    snapshot = {}
    for table in STATE_TABLES:
        found = await rows(engine, sa.text(f"SELECT * FROM {table}"))
        snapshot[table] = sorted(str({k: v for k, v in r._mapping.items() if k != "published_at"}) for r in found)
    return snapshot


async def full_flow(executor, producer, bot, symbol) -> list[c.Message]:
    sent = [
        c.MarkPrice(symbol=symbol, price=D("100")),
        open_intent(bot, symbol, take_profit_price=D("120"), stop_loss_price=D("90")),
    ]
    await publish(producer, *sent)
    await position_in(executor.engine, bot.bot_id, "open")
    closing = [c.MarkPrice(symbol=symbol, price=D("105")), close_intent(bot, symbol)]
    await publish(producer, *closing)
    await position_in(executor.engine, bot.bot_id, "closed")
    return [*sent, *closing]


async def test_redelivering_every_message_of_a_full_flow_three_times_changes_nothing(
    executor, producer, make_bot, tail, infra
):
    bot, symbol = await make_bot("100"), unique_symbol()
    sent = await full_flow(executor, producer, bot, symbol)
    produced = await tail.wait_for(
        lambda m: (
            getattr(m, "bot_id", None) == bot.bot_id or getattr(m, "exchange_account", None) == bot.exchange_account
        ),
        count=20,
        what="every message of the flow",
    )
    assert sorted(type(m).__name__ for m in produced) == sorted(
        ["ReserveBudget", "BudgetReserved", "OrderFilled", "ExchangeOrderFact", "ExchangeTradeFact"] * 2
        + ["BudgetChanged"] * 3
        + ["PositionOpened", "PositionClosed"]
        + ["ExchangeAlgoOrderFact"] * 4
        + ["ProtectiveOrdersPlaced"]
    )
    before = await state(executor.engine)
    records = await publish(producer, *[*sent, *produced] * 3)
    for group in set(CONSUMERS.values()):
        await consumed(infra.kafka_bootstrap, group, [r for r in records if CONSUMERS.get(r.topic) == group])
    assert await state(executor.engine) == before
    # The router publishing an intent again under a new message id: the inbox notes the id, nothing else moves.
    (opened,) = [m for m in sent if isinstance(m, c.OrderIntent) and m.intent is c.IntentKind.OPEN]
    retry = opened.model_copy(update={"message_id": uuid.uuid4()})
    await consumed(infra.kafka_bootstrap, INTENTS_GROUP, await publish(producer, retry))
    after = await state(executor.engine)
    assert [t for t in STATE_TABLES if before[t] != after[t]] == ["executor.inbox"]
    assert len(after["executor.inbox"]) == len(before["executor.inbox"]) + 1
