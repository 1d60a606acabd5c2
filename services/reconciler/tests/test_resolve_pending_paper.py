"""resolve-pending on the paper venue: the reconciler looks its orders up in the venue's tables, read-only."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from egis_common import contracts as c
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.ids import client_order_id
from egis_localinfra.testing import eventually
from executor.exchange import OrderSide
from ledger import bots
from ledger import repository as ledger_repo
from paper_helpers import (
    paper_orders,
    running_paper_venue,
    trade,
    unique_account,
    unique_symbol,
)
from reconciler import pending
from reconciler_helpers import admin_command, ask, publish

pytestmark = pytest.mark.infra
D = Decimal
RESOLVE = AdminCommandName.RESOLVE_PENDING


@pytest.fixture(scope="module")
async def paper(reconciler_runtime):
    async with running_paper_venue() as venue:
        yield venue


async def paper_bot(ledger_runtime) -> sa.Row:
    spec = bots.NewBot(name="paper bot", signal_key=f"key-{uuid.uuid4().hex}", exchange=c.ExchangeName.PAPER,
                       exchange_account=unique_account(), initial_budget_usd=D(100), default_order_size_usd=D(10))
    async with ledger_runtime.uow.begin() as conn:
        row, _secret = await bots.create_bot(conn, ledger_runtime.outbox, uuid.uuid4(), spec)
    return row


async def reserved(ledger_runtime, messages, bot, symbol: str) -> c.BudgetReserved:
    command = c.ReserveBudget(intent_id=uuid.uuid4(), bot_id=bot.bot_id, intent=c.IntentKind.OPEN, side=c.Side.LONG,
                              symbol=symbol, requested_size_usd=D(10), exchange_account=bot.exchange_account)
    await publish(ledger_runtime, command)
    return (await eventually(lambda: messages.matching(
        lambda m: isinstance(m, c.BudgetReserved) and m.intent_id == command.intent_id), what="reservation"))[0]


def went_pending(bot, answer: c.BudgetReserved, symbol: str) -> c.OrderPendingReconciliation:
    """The executor lost track of the order ten minutes ago (the not-found window is one minute)."""
    return c.OrderPendingReconciliation(
        intent_id=answer.intent_id, bot_id=bot.bot_id, position_id=answer.position_id, intent=c.IntentKind.OPEN,
        symbol=symbol, client_order_id=client_order_id(answer.intent_id), exchange=c.ExchangeName.PAPER,
        exchange_account=bot.exchange_account, cause="timeout", occurred_at=utc_now() - timedelta(minutes=10),
    )


async def ledger_positions(ledger_runtime, bot_id) -> dict[uuid.UUID, sa.Row]:
    query = sa.select(ledger_repo.positions).where(ledger_repo.positions.c.bot_id == bot_id)
    async with ledger_runtime.engine.connect() as conn:
        return {row.position_id: row for row in (await conn.execute(query)).all()}


async def unresolved(reconciler_runtime, bot_id) -> list:
    async with reconciler_runtime.engine.connect() as conn:
        return await pending.unresolved(conn, bot_id)


async def settled_in_ledger(ledger_runtime, bot_id, filled, absent):
    rows = await ledger_positions(ledger_runtime, bot_id)
    statuses = (rows[filled.position_id].status, rows[absent.position_id].status)
    return rows if statuses == ("open", "failed") else None


async def test_a_filled_paper_order_opens_exactly_one_position_and_an_absent_one_releases_its_reservation(
    reconciler_runtime, ledger_runtime, messages, paper
):
    bot, placed_symbol, absent_symbol = await paper_bot(ledger_runtime), unique_symbol(), unique_symbol()
    filled, absent = (await reserved(ledger_runtime, messages, bot, placed_symbol),
                      await reserved(ledger_runtime, messages, bot, absent_symbol))
    await paper.set_mark_price(placed_symbol, D("200"))
    booked = await trade(paper, bot.exchange_account, placed_symbol, OrderSide.BUY, "0.05",
                         client_order_id=client_order_id(filled.intent_id))
    await publish(reconciler_runtime, went_pending(bot, filled, placed_symbol),
                  went_pending(bot, absent, absent_symbol))
    await eventually(lambda: _has(unresolved(reconciler_runtime, bot.bot_id), 2), what="pending recorded")

    dry = await ask(reconciler_runtime, messages, admin_command(RESOLVE, bot_id=bot.bot_id))
    by_intent = {line["intent_id"]: line for line in dry.report["pending"]}
    assert by_intent[str(filled.intent_id)]["resolution"] == "found_filled"
    assert by_intent[str(filled.intent_id)]["evidence"]["exchange_order_id"] == booked.exchange_order_id
    assert by_intent[str(absent.intent_id)]["resolution"] == "not_found_after_window"
    assert (dry.report["would_change"], dry.report["changed"]) == (2, 0)

    confirmed = await ask(reconciler_runtime, messages, admin_command(RESOLVE, bot_id=bot.bot_id, confirm=True))
    assert confirmed.report["changed"] == 2
    rows = await eventually(lambda: settled_in_ledger(ledger_runtime, bot.bot_id, filled, absent), what="ledger")
    opened = rows[filled.position_id]
    assert (opened.executed_qty, opened.avg_entry_price, opened.size_usd) == (D("0.05"), D("200"), D("10"))
    assert [p for p in rows.values() if p.status == "open"] == [opened]  # exactly one open position

    again = await ask(reconciler_runtime, messages, admin_command(RESOLVE, bot_id=bot.bot_id, confirm=True))
    assert (again.report["examined"], again.report["changed"]) == (0, 0)
    fills = await messages.matching(lambda m: isinstance(m, c.ApplyFoundFill) and m.bot_id == bot.bot_id)
    assert [(f.intent_id, f.executed_qty, f.exchange_order_id) for f in fills] == [
        (filled.intent_id, D("0.05"), booked.exchange_order_id)]
    releases = await messages.matching(lambda m: isinstance(m, c.ReleaseReservation) and m.bot_id == bot.bot_id)
    assert [(r.intent_id, r.reason) for r in releases] == [(absent.intent_id, "not_found_after_window")]
    assert len(await paper_orders(reconciler_runtime.engine, bot.exchange_account)) == 1  # looked up, never placed


async def _has(found, count: int) -> bool:
    return len(await found) == count
