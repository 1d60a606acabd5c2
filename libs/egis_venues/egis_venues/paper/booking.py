"""Booking orders on the paper venue: match each against the mark price, then record what executed.

Every order of a batch sees the account as the orders before it left it
(`VenueState`); the executed ones become orders, trades, positions and wallet
balances (`recording`), and each order and trade is announced as an exchange fact.

An order that says when its caller stops waiting (`not_after`) is booked only before then, by the database's
clock, and under its advisory lock: a look-up that takes the same lock after `not_after` and finds nothing
knows that nothing can book it any more (`lookup`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_venues.paper import facts, stops, tables
from egis_venues.paper.context import NO_MARK_PRICE, VenueContext
from egis_venues.paper.matching import Execution, match
from egis_venues.paper.recording import Executed, record
from egis_venues.paper.state import VenueState
from egis_venues.port import MarketOrder, OrderOutcome, Rejected

# The code of an order that reached the venue after its `not_after`: refused, nothing was placed.
TOO_LATE = "paper_order_past_not_after"


async def book(venue: VenueContext, conn: AsyncConnection, orders: list[MarketOrder]) -> list[OrderOutcome]:
    # The order locks before the account locks of `venue.state`, in every booking: no two wait on each other.
    db_now = await tables.lock_orders(conn, [o.client_order_id for o in orders if o.not_after is not None])
    marks = await tables.marks_of(conn, {order.symbol for order in orders})
    venue_state = await venue.state(conn, [(order.account, order.symbol) for order in orders])
    outcomes: list[OrderOutcome | None] = []
    executed: list[Executed] = []
    for order in orders:
        outcome = _too_late(order, db_now) or _match(venue, order, marks.get(order.symbol), venue_state)
        if isinstance(outcome, Execution):
            venue_state.apply(order.account, order.symbol, outcome)
            executed.append((len(outcomes), order, outcome, "MARKET"))
        outcomes.append(outcome if isinstance(outcome, Rejected) else None)
    for (index, *_), row in zip(executed, await record(venue, conn, venue_state, executed), strict=True):
        outcomes[index] = facts.filled(row)
    for account, symbol in venue_state.flat():
        await stops.expire(venue, conn, account, symbol, Decimal("0"))
    # Each None stood for an execution, and every execution was filled in above.
    return cast(list[OrderOutcome], outcomes)


def _too_late(order: MarketOrder, db_now: datetime) -> Rejected | None:
    if order.not_after is None or db_now <= order.not_after:
        return None
    return Rejected(
        TOO_LATE,
        f"the order reached the venue at {db_now.isoformat()}, after its not_after "
        f"{order.not_after.isoformat()}: nothing was placed",
        {"client_order_id": order.client_order_id},
        not_processed=True,
    )


def _match(
    venue: VenueContext, order: MarketOrder, mark: Decimal | None, venue_state: VenueState
) -> Execution | Rejected:
    try:
        rules = venue.rules(order.symbol)
    except LookupError:
        return Rejected("-1121", "Invalid symbol.")
    if mark is None:
        return Rejected(NO_MARK_PRICE, f"no mark price for {order.symbol}: nothing was placed")
    return match(order, rules, mark, venue_state.book(order.account, order.symbol), venue.config)
