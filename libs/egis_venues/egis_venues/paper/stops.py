"""Take-profit and stop-loss on the paper venue: placed as algo orders, fired by mark prices.

A triggered algo order spawns a reduce-only market order for the whole
position, as Binance's Algo Service does; the facts say so (TRIGGERED and
FINISHED with the spawned order id, then the order and its trade). Once a
position is flat, its remaining algo orders expire.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_venues.paper import facts, tables
from egis_venues.paper.context import NO_MARK_PRICE, VenueContext
from egis_venues.paper.matching import match, triggers
from egis_venues.paper.recording import record
from egis_venues.port import MarketOrder, OrderSide, Rejected, StopOrder, StopPlaced


async def place(venue: VenueContext, conn: AsyncConnection, order: StopOrder) -> StopPlaced | Rejected:
    if order.symbol not in venue.settings.symbols and venue.settings.other_symbols is None:
        return Rejected("-1121", "Invalid symbol.")
    mark = await tables.mark(conn, order.symbol)
    if mark is None:
        return Rejected(NO_MARK_PRICE, f"no mark price for {order.symbol}: nothing was placed")
    if triggers(order.kind, order.side, order.trigger_price, mark):
        return Rejected("-2021", "Order would immediately trigger.")
    row = await tables.insert_stop(
        conn,
        {
            "account": order.account,
            "symbol": order.symbol,
            "client_algo_id": order.client_algo_id,
            "side": order.side.value,
            "kind": order.kind,
            "trigger_price": order.trigger_price,
        },
    )
    if row is None:
        return Rejected("-4116", "ClientOrderId is duplicated.")
    await venue.outbox.add(conn, facts.algo_fact(row, "NEW"))
    return StopPlaced(str(row.algo_id), row.client_algo_id)


async def trigger(venue: VenueContext, conn: AsyncConnection, symbol: str, mark: Decimal) -> None:
    """Fire every open algo order of the symbol that this mark price crosses."""
    done: set[int] = set()
    for stop in await tables.open_stops(conn, symbol):
        if stop.algo_id not in done and triggers(stop.kind, OrderSide(stop.side), stop.trigger_price, mark):
            done |= await _fire(venue, conn, stop, mark)


async def _fire(venue: VenueContext, conn: AsyncConnection, stop: tables.Row, mark: Decimal) -> set[int]:
    state = await venue.state(conn, [(stop.account, stop.symbol)])
    book = state.book(stop.account, stop.symbol)
    order = MarketOrder(
        stop.account,
        stop.symbol,
        OrderSide(stop.side),
        abs(book.position_qty),
        client_order_id=stop.client_algo_id,
        reduce_only=True,
    )
    execution = match(order, venue.rules(stop.symbol), mark, book, venue.config)
    if isinstance(execution, Rejected):  # nothing left to close on that side
        await tables.close_stop(conn, stop.algo_id, "EXPIRED")
        await venue.announce(conn, facts.algo_fact(stop, "EXPIRED"))
        return {stop.algo_id}
    await tables.close_stop(conn, stop.algo_id, "FINISHED")  # before booking: the expiry below skips it
    state.apply(stop.account, stop.symbol, execution)
    (spawned,) = await record(venue, conn, state, [(0, order, execution, stop.kind)])
    await tables.close_stop(conn, stop.algo_id, "FINISHED", spawned.order_id)
    await venue.announce(
        conn, facts.algo_fact(stop, "TRIGGERED", spawned.order_id), facts.algo_fact(stop, "FINISHED", spawned.order_id)
    )
    return {stop.algo_id} | await expire(venue, conn, stop.account, stop.symbol, execution.position_qty)


async def expire(
    venue: VenueContext, conn: AsyncConnection, account: str, symbol: str, position_qty: Decimal
) -> set[int]:
    """A flat position's open algo orders have nothing left to close: they expire."""
    if position_qty != 0:
        return set()
    expired = await tables.open_stops(conn, symbol, account)
    for stop in expired:
        await tables.close_stop(conn, stop.algo_id, "EXPIRED")
    await venue.announce(conn, *(facts.algo_fact(stop, "EXPIRED") for stop in expired))
    return {stop.algo_id for stop in expired}
