"""The paper venue beside the reconciler: its own tables, booked through the executor's adapter.

The venue publishes its exchange facts through the executor's outbox, as it
does in production; nothing of the executor's flow runs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import sqlalchemy as sa
from egis_common.runtime import build_runtime
from executor.adapters.paper import PaperExchange
from executor.adapters.paper import tables as paper_tables
from executor.exchange import Filled, MarketOrder, OrderSide
from executor.settings import ExecutorSettings, PaperSettings


@contextlib.asynccontextmanager
async def running_paper_venue() -> AsyncIterator[PaperExchange]:
    runtime = build_runtime(ExecutorSettings(metrics_port=0, outbox_poll_interval_seconds=0.2, log_level="WARNING"))
    await runtime.start_relay()
    try:
        yield PaperExchange(runtime.uow, runtime.outbox, PaperSettings())
    finally:
        await runtime.stop()


def unique_symbol() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}USDT"


def unique_account() -> str:
    return f"paper-{uuid.uuid4().hex[:10]}"


async def trade(paper: PaperExchange, account: str, symbol: str, side: OrderSide, qty: str,
                client_order_id: str | None = None, reduce_only: bool = False) -> Filled:
    order = MarketOrder(account, symbol, side, Decimal(qty), client_order_id or f"ego-{uuid.uuid4().hex[:20]}",
                        reduce_only)
    outcome = await paper.place_market_order(order)
    assert isinstance(outcome, Filled), outcome
    return outcome


async def paper_orders(engine, account: str) -> list[sa.Row]:
    query = sa.select(paper_tables.orders).where(paper_tables.orders.c.account == account)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())
