"""Booking orders on the paper venue: match each against the mark price, then record what executed.

Every order of a batch sees the account as the orders before it left it
(`VenueState`); the executed ones become orders, trades, positions and wallet
balances, and each order and trade is announced as an exchange fact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from executor.adapters.paper import facts, stops, tables
from executor.adapters.paper.matching import Execution, match
from executor.adapters.paper.state import VenueState
from executor.exchange import Filled, MarketOrder, OrderOutcome, Rejected

if TYPE_CHECKING:
    from executor.adapters.paper.venue import PaperExchange

NO_MARK_PRICE = "no_mark_price"
Executed = tuple[int, MarketOrder, Execution, str]  # (position in the batch, order, execution, order type)


async def book(venue: PaperExchange, conn: AsyncConnection, orders: list[MarketOrder]) -> list[OrderOutcome]:
    marks = await tables.marks_of(conn, {order.symbol for order in orders})
    venue_state = await state(venue, conn, [(order.account, order.symbol) for order in orders])
    outcomes: list[OrderOutcome | None] = []
    executed: list[Executed] = []
    for order in orders:
        outcome = await _match(venue, order, marks.get(order.symbol), venue_state)
        if isinstance(outcome, Execution):
            venue_state.apply(order.account, order.symbol, outcome)
            executed.append((len(outcomes), order, outcome, "MARKET"))
        outcomes.append(outcome if isinstance(outcome, Rejected) else None)
    for (index, *_), row in zip(executed, await record(venue, conn, venue_state, executed), strict=True):
        outcomes[index] = filled(row)
    for account, symbol in venue_state.flat():
        await stops.expire(venue, conn, account, symbol, Decimal("0"))
    return outcomes


async def _match(venue: PaperExchange, order: MarketOrder, mark: Decimal | None,
                 venue_state: VenueState) -> Execution | Rejected:
    try:
        rules = await venue.symbol_rules(order.symbol)
    except LookupError:
        return Rejected("-1121", "Invalid symbol.")
    if mark is None:
        return Rejected(NO_MARK_PRICE, f"no mark price for {order.symbol}: nothing was placed")
    return match(order, rules, mark, venue_state.book(order.account, order.symbol), venue.config)


async def state(venue: PaperExchange, conn: AsyncConnection, pairs: list[tuple[str, str]]) -> VenueState:
    settings = venue.settings
    opening = lambda account: settings.balances_usd.get(account, settings.default_balance_usd)  # noqa: E731
    return await VenueState.load(conn, pairs, opening, venue.config.leverage)


async def record(venue: PaperExchange, conn: AsyncConnection, venue_state: VenueState,
                 executed: list[Executed]) -> list[sa.Row]:
    """Book executions: orders, trades, positions, wallets; announce each order and trade as a fact."""
    orders = await tables.insert_orders(conn, [_order_row(order, ex, kind) for _, order, ex, kind in executed])
    traded = [(row, ex) for row, (_, _, ex, _) in zip(orders, executed, strict=True) if ex.executed_qty > 0]
    trades = iter(await tables.insert_trades(conn, [_trade_row(row, ex) for row, ex in traded]))
    await venue_state.save(conn)
    announced = []
    for row in orders:
        announced.append(facts.order_fact(row))
        if row.executed_qty > 0:
            announced.append(facts.trade_fact(next(trades)))
    await venue.outbox.add(conn, *announced)
    return orders


def _order_row(order: MarketOrder, execution: Execution, order_type: str) -> dict:
    return {
        "account": order.account, "symbol": order.symbol, "client_order_id": order.client_order_id,
        "side": order.side.value, "order_type": order_type, "reduce_only": order.reduce_only,
        "status": execution.status, "orig_qty": execution.orig_qty, "executed_qty": execution.executed_qty,
        "avg_price": execution.price if execution.executed_qty else Decimal("0"), "fee_usd": execution.fee_usd,
        "realised_pnl_usd": execution.realised_pnl_usd,
    }


def _trade_row(order: sa.Row, execution: Execution) -> dict:
    return {
        "order_id": order.order_id, "account": order.account, "symbol": order.symbol, "side": order.side,
        "price": execution.price, "qty": execution.executed_qty, "commission_asset": "USDT",
        "realised_pnl_usd": execution.realised_pnl_usd, "commission": execution.fee_usd,
    }


def filled(row: sa.Row) -> Filled:
    return Filled(
        exchange_order_id=str(row.order_id), executed_qty=row.executed_qty, avg_price=row.avg_price,
        fee_usd=row.fee_usd, filled_at=row.created_at, realised_pnl_usd=row.realised_pnl_usd, raw=facts.raw(row),
    )
