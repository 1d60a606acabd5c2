"""REST as the stream's fallback: the trades of a filled closing order that the facts are missing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from egis_common.logs import get_logger
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler.adapters.binance_events import from_account_trade
from reconciler.domain import (
    Facts,
    NoClosure,
    PositionView,
    closure,
    filled_closing_order,
)
from reconciler.repository import facts_for, insert_facts

log = get_logger(__name__)


async def with_missing_trades(
    conn: AsyncConnection, venues: Mapping[str, Any], positions: list[PositionView], facts: Facts
) -> Facts:
    """The facts, plus every trade a venue reports for a closing order whose trades do not add up yet.

    Fetched trades are stored as facts like any other (a trade already stored stays as it is).
    """
    fetched = []
    for position in positions:
        if closure(position, facts) is not NoClosure.TRADES_INCOMPLETE:
            continue
        order, _route = filled_closing_order(position, facts)
        venue = venues.get(order.exchange)
        if venue is None or not hasattr(venue, "account_trades"):
            continue
        trades = await venue.account_trades(order.exchange_account, order.symbol, order.exchange_order_id)
        if not isinstance(trades, list):  # Unknown: the report says trades_incomplete, a later run retries
            log.warning("trades_fetch_failed", order_id=order.exchange_order_id, cause=trades.cause)
            continue
        fetched += [from_account_trade(trade, order.exchange_account) for trade in trades]
    if not fetched:
        return facts
    await insert_facts(conn, fetched)
    return await facts_for(conn, positions)
