"""What executed on the paper venue, written down: orders, trades, positions and wallets, each order and trade
announced as an exchange fact. Booking and the stops both record through here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_venues.paper import facts, tables
from egis_venues.paper.context import VenueContext
from egis_venues.paper.matching import Execution
from egis_venues.paper.state import VenueState
from egis_venues.port import MarketOrder

Executed = tuple[int, MarketOrder, Execution, str]  # (position in the batch, order, execution, order type)


async def record(
    venue: VenueContext, conn: AsyncConnection, venue_state: VenueState, executed: list[Executed]
) -> list[tables.Row]:
    """Book executions: orders, trades, positions, wallets; announce each order and trade as a fact."""
    orders = await tables.insert_orders(conn, [_order_row(order, ex, kind) for _, order, ex, kind in executed])
    traded = [(row, ex) for row, (_, _, ex, _) in zip(orders, executed, strict=True) if ex.executed_qty > 0]
    trades = iter(await tables.insert_trades(conn, [_trade_row(row, ex) for row, ex in traded]))
    await venue_state.save(conn)
    announced: list[c.Message] = []
    for row in orders:
        announced.append(facts.order_fact(row))
        if row.executed_qty > 0:
            announced.append(facts.trade_fact(next(trades)))
    await venue.outbox.add(conn, *announced)
    return orders


def _order_row(order: MarketOrder, execution: Execution, order_type: str) -> dict[str, Any]:
    return {
        "account": order.account,
        "symbol": order.symbol,
        "client_order_id": order.client_order_id,
        "side": order.side.value,
        "order_type": order_type,
        "reduce_only": order.reduce_only,
        "status": execution.status,
        "orig_qty": execution.orig_qty,
        "executed_qty": execution.executed_qty,
        "avg_price": execution.price if execution.executed_qty else Decimal("0"),
        "fee_usd": execution.fee_usd,
        "realised_pnl_usd": execution.realised_pnl_usd,
    }


def _trade_row(order: tables.Row, execution: Execution) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "account": order.account,
        "symbol": order.symbol,
        "side": order.side,
        "price": execution.price,
        "qty": execution.executed_qty,
        "commission_asset": "USDT",
        "realised_pnl_usd": execution.realised_pnl_usd,
        "commission": execution.fee_usd,
    }
