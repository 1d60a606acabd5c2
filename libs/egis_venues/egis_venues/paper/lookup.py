"""The paper venue's look-up of an order by client order id: read-only, on any engine of its database.

The venue answers it (`PaperExchange.find_order`), and so does the reconciler:
the venue's tables are in the database it shares, and it asks nothing else of the venue.

Given the order's `not_after`, "not found" can be exact: the venue books an order only before its
`not_after` by the database's clock, under the order's advisory lock (`booking`). A look-up that finds
nothing takes the same lock, so a booking in flight commits (or not) first, reads again, and once the
database's clock is past `not_after` no booking can come any more: the order is absent for good.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common.logs import get_logger
from egis_venues.paper import facts, tables
from egis_venues.port import LookupOutcome, NotFound, Unknown

log = get_logger(__name__)
# A booking holds an order's lock for one short transaction; a look-up that waits longer than this is answered
# Unknown (asked again later) rather than holding the caller, whose run asks about other orders too.
LOCK_TIMEOUT = "5s"


async def find_order(
    engine: AsyncEngine, account: str, symbol: str, client_order_id: str, not_after: datetime | None = None
) -> LookupOutcome:
    """The latest order of the account with this client order id, as the venue booked it; when there is none,
    a final NotFound once nothing can book it any more (`not_after` passed)."""
    async with engine.connect() as conn:
        row = await tables.latest_order(conn, account, client_order_id)
    if row is None and not_after is not None:
        return await _after_bookings(engine, account, symbol, client_order_id, not_after)
    return facts.filled(row) if row is not None and row.symbol == symbol else NotFound()


async def _after_bookings(
    engine: AsyncEngine, account: str, symbol: str, client_order_id: str, not_after: datetime
) -> LookupOutcome:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        db_now = await tables.lock_orders(conn, [client_order_id])
        row = await tables.latest_order(conn, account, client_order_id)
    if row is not None:
        return facts.filled(row) if row.symbol == symbol else NotFound()
    return NotFound(final=db_now > not_after)


class PaperLookup:
    """The one question the reconciler asks the paper venue; a database error is Unknown, never "not found"."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find_order(
        self, account: str, symbol: str, client_order_id: str, not_after: datetime | None = None
    ) -> LookupOutcome:
        try:
            return await find_order(self.engine, account, symbol, client_order_id, not_after)
        except Exception as error:
            log.exception("paper_lookup_failed", account=account, client_order_id=client_order_id)
            return Unknown(f"paper venue unreachable: {type(error).__name__}", {"error": str(error)[:500]})
