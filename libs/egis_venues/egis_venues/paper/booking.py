"""Booking orders on the paper venue: match each against the mark price, then record what executed.

Every order of a batch sees the account as the orders before it left it
(`VenueState`); the executed ones become orders, trades, positions and wallet
balances (`recording`), and each order and trade is announced as an exchange fact.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_venues.paper import facts, stops, tables
from egis_venues.paper.context import NO_MARK_PRICE, VenueContext
from egis_venues.paper.matching import Execution, match
from egis_venues.paper.recording import Executed, record
from egis_venues.paper.state import VenueState
from egis_venues.port import MarketOrder, OrderOutcome, Rejected


async def book(venue: VenueContext, conn: AsyncConnection, orders: list[MarketOrder]) -> list[OrderOutcome]:
    marks = await tables.marks_of(conn, {order.symbol for order in orders})
    venue_state = await venue.state(conn, [(order.account, order.symbol) for order in orders])
    outcomes: list[OrderOutcome | None] = []
    executed: list[Executed] = []
    for order in orders:
        outcome = _match(venue, order, marks.get(order.symbol), venue_state)
        if isinstance(outcome, Execution):
            venue_state.apply(order.account, order.symbol, outcome)
            executed.append((len(outcomes), order, outcome, "MARKET"))
        outcomes.append(outcome if isinstance(outcome, Rejected) else None)
    for (index, *_), row in zip(executed, await record(venue, conn, venue_state, executed), strict=True):
        outcomes[index] = facts.filled(row)
    for account, symbol in venue_state.flat():
        await stops.expire(venue, conn, account, symbol, Decimal("0"))
    return outcomes


def _match(venue: VenueContext, order: MarketOrder, mark: Decimal | None,
           venue_state: VenueState) -> Execution | Rejected:
    try:
        rules = venue.rules(order.symbol)
    except LookupError:
        return Rejected("-1121", "Invalid symbol.")
    if mark is None:
        return Rejected(NO_MARK_PRICE, f"no mark price for {order.symbol}: nothing was placed")
    return match(order, rules, mark, venue_state.book(order.account, order.symbol), venue.config)
