"""The paper venue's look-up of an order by client order id: read-only, on any engine of its database.

The venue answers it (`PaperExchange.find_order`), and so does the reconciler:
the venue's tables are in the database it shares, and it asks nothing else of the venue.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common.logs import get_logger
from egis_venues.paper import facts, tables
from egis_venues.port import LookupOutcome, NotFound, Unknown

log = get_logger(__name__)


async def find_order(engine: AsyncEngine, account: str, symbol: str, client_order_id: str) -> LookupOutcome:
    """The latest order of the account with this client order id, as the venue booked it."""
    async with engine.connect() as conn:
        row = await tables.latest_order(conn, account, client_order_id)
    return facts.filled(row) if row is not None and row.symbol == symbol else NotFound()


class PaperLookup:
    """The one question the reconciler asks the paper venue; a database error is Unknown, never "not found"."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find_order(self, account: str, symbol: str, client_order_id: str) -> LookupOutcome:
        try:
            return await find_order(self.engine, account, symbol, client_order_id)
        except Exception as error:
            log.exception("paper_lookup_failed", account=account, client_order_id=client_order_id)
            return Unknown(f"paper venue unreachable: {type(error).__name__}", {"error": str(error)[:500]})
