"""The paper venue beside the reconciler: its own tables, booked through the venue library.

The venue publishes its exchange facts through the outbox of the executor's
schema, as it does in production; nothing of the executor runs. Also: paper bots in
the session's ledger, and the pending orders the executor would report for them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from reconciler_helpers import publish

from egis_common import contracts as c
from egis_common.contracts import utc_now
from egis_common.ids import client_order_id
from egis_common.runtime import build_runtime
from egis_common.settings import EgisSettings
from egis_localinfra.pytest_plugin import service_login
from egis_localinfra.testing import eventually
from egis_venues.paper import PaperExchange
from egis_venues.paper import tables as paper_tables
from egis_venues.port import Filled, MarketOrder, OrderSide
from egis_venues.settings import PaperSettings
from ledger import bots
from ledger import repository as ledger_repo

D = Decimal


@contextlib.asynccontextmanager
async def running_paper_venue() -> AsyncIterator[PaperExchange]:
    # The venue's tables and the outbox it announces through are in the executor's schema.
    settings = EgisSettings(
        service_name="paper-venue",
        db_schema="executor",
        metrics_port=0,
        outbox_poll_interval_seconds=0.2,
        log_level="WARNING",
        **service_login("executor"),
    )
    runtime = build_runtime(settings)
    await runtime.start_relay()
    try:
        yield PaperExchange(runtime.uow, runtime.outbox, PaperSettings())
    finally:
        await runtime.stop()


def unique_symbol() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}USDT"


def unique_account() -> str:
    return f"paper-{uuid.uuid4().hex[:10]}"


async def trade(
    paper: PaperExchange,
    account: str,
    symbol: str,
    side: OrderSide,
    qty: str,
    client_order_id: str | None = None,
    reduce_only: bool = False,
) -> Filled:
    order = MarketOrder(
        account, symbol, side, Decimal(qty), client_order_id or f"ego-{uuid.uuid4().hex[:20]}", reduce_only
    )
    outcome = await paper.place_market_order(order)
    assert isinstance(outcome, Filled), outcome
    return outcome


async def paper_orders(engine, account: str) -> list[sa.Row]:
    query = sa.select(paper_tables.orders).where(paper_tables.orders.c.account == account)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


# A paper bot in the ledger, and the orders of its that the executor lost track of.


async def paper_bot(ledger_runtime) -> sa.Row:
    spec = bots.NewBot(
        name="paper bot",
        signal_key=f"key-{uuid.uuid4().hex}",
        exchange=c.ExchangeName.PAPER,
        exchange_account=unique_account(),
        initial_budget_usd=D(100),
        default_order_size_usd=D(10),
    )
    async with ledger_runtime.uow.begin() as conn:
        row, _secret = await bots.create_bot(conn, ledger_runtime.outbox, uuid.uuid4(), spec)
    return row


async def reserved(ledger_runtime, messages, bot, symbol: str) -> c.BudgetReserved:
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=bot.bot_id,
        intent=c.IntentKind.OPEN,
        side=c.Side.LONG,
        symbol=symbol,
        requested_size_usd=D(10),
        exchange_account=bot.exchange_account,
    )
    await publish(ledger_runtime, command)
    return (
        await eventually(
            lambda: messages.matching(lambda m: isinstance(m, c.BudgetReserved) and m.intent_id == command.intent_id),
            what="reservation",
        )
    )[0]


def went_pending(bot, answer: c.BudgetReserved, symbol: str) -> c.OrderPendingReconciliation:
    """The executor lost track of the order ten minutes ago (the not-found window is one minute)."""
    return c.OrderPendingReconciliation(
        intent_id=answer.intent_id,
        bot_id=bot.bot_id,
        position_id=answer.position_id,
        intent=c.IntentKind.OPEN,
        symbol=symbol,
        client_order_id=client_order_id(answer.intent_id),
        exchange=c.ExchangeName.PAPER,
        exchange_account=bot.exchange_account,
        cause="timeout",
        occurred_at=utc_now() - timedelta(minutes=10),
    )


async def ledger_positions(ledger_runtime, bot_id) -> dict[uuid.UUID, sa.Row]:
    query = sa.select(ledger_repo.positions).where(ledger_repo.positions.c.bot_id == bot_id)
    async with ledger_runtime.engine.connect() as conn:
        return {row.position_id: row for row in (await conn.execute(query)).all()}


async def settled_in_ledger(ledger_runtime, bot_id, filled, absent):
    rows = await ledger_positions(ledger_runtime, bot_id)
    statuses = (rows[filled.position_id].status, rows[absent.position_id].status)
    return rows if statuses == ("open", "failed") else None
