"""The paper exchange: the exchange port on the venue's own tables.

The venue commits in transactions of its own, separate from its caller's
bookkeeping, as a remote venue commits an order whatever happens to the
caller afterwards. Orders that arrive together are booked in one transaction
(`Coalescer`). Nothing escapes the port: a failure inside the venue comes back
as `Unknown` when the order may exist, exactly as with a real venue. A
booking whose transaction failed before its commit placed nothing: it is
tried again while the database is unavailable, and refused after that. A
commit whose answer was lost is settled by the venue's own rows, read once
the server process that ran it has ended: booked, or booked again.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from egis_common.contracts import utc_now
from egis_common.failures import transient_retrying
from egis_common.logs import get_logger
from egis_common.outbox import Outbox, UnitOfWork
from egis_venues.paper import booking, facts, lookup, stops, tables
from egis_venues.paper.coalesce import Coalescer
from egis_venues.paper.context import AlgoFactsHook, UnknownSymbol, VenueContext
from egis_venues.port import (
    LookupOutcome,
    MarketOrder,
    OrderOutcome,
    Rejected,
    StopOrder,
    StopPlaced,
    SymbolRules,
    Unknown,
)
from egis_venues.settings import PaperSettings

log = get_logger(__name__)
# The code of an order the venue could not book because its database was unavailable: nothing was placed.
VENUE_UNAVAILABLE = "paper_venue_unavailable"


__all__ = ["NoMarkPrice", "PaperExchange", "UnknownSymbol"]


class NoMarkPrice(LookupError):
    pass


class _NotCommitted(Exception):
    """The venue's transaction rolled back: none of its orders exists."""


class _InDoubt(Exception):
    """The commit's answer was lost: the transaction of server process `backend_pid` committed, or did not."""

    def __init__(self, backend_pid: int) -> None:
        super().__init__(backend_pid)
        self.backend_pid = backend_pid


class _StillRunning(TimeoutError):
    """The server process of an in-doubt commit has not ended yet: its transaction may still commit."""


class PaperExchange:
    # The orders of a batch go to the venue together (the Coalescer books them in one transaction);
    # bounding them as a remote venue's calls are bounded would only split that transaction.
    batches_concurrent_calls = True

    def __init__(
        self, uow: UnitOfWork, outbox: Outbox, settings: PaperSettings, on_algo_facts: AlgoFactsHook | None = None
    ) -> None:
        """`on_algo_facts`: see `AlgoFactsHook`; the executor marks its own stops that ended."""
        self.uow, self.outbox, self.settings = uow, outbox, settings
        self.context = VenueContext(settings, outbox, on_algo_facts)
        self.config = self.context.config
        self._orders: Coalescer[MarketOrder, OrderOutcome] = Coalescer(self._place_all)
        self._marks: Coalescer[str, Decimal | None] = Coalescer(self._marks_of)

    # --- the port -----------------------------------------------------------------

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        return self.context.rules(symbol)

    async def mark_price(self, symbol: str) -> Decimal:
        price = await self._marks.submit(symbol)  # the symbols asked for together: one read
        if price is None:
            raise NoMarkPrice(f"no mark price for {symbol} yet")
        return price

    async def place_market_order(self, order: MarketOrder) -> OrderOutcome:
        return await self._orders.submit(order)

    async def find_order(
        self, account: str, symbol: str, client_order_id: str, not_after: datetime | None = None
    ) -> LookupOutcome:
        return await lookup.find_order(self.uow.engine, account, symbol, client_order_id, not_after)

    async def place_stop(self, order: StopOrder) -> StopPlaced | Rejected | Unknown:
        try:
            async with self.uow.begin() as conn:
                return await stops.place(self.context, conn, order)
        except Exception as error:
            log.exception("paper_stop_failed", client_algo_id=order.client_algo_id)
            return Unknown(f"paper venue error: {type(error).__name__}", {"error": str(error)[:500]})

    # --- commands and queries of the paper venue itself -----------------------------

    async def set_mark_price(self, symbol: str, price: Decimal, as_of: datetime | None = None) -> None:
        """Record a mark price and fire the stop orders it crosses (the mark price topic calls this)."""
        async with self.uow.begin() as conn:
            if await tables.set_mark(conn, symbol, price, as_of or utc_now()):
                await stops.trigger(self.context, conn, symbol, price)

    async def fund(self, account: str, balance_usd: Decimal) -> None:
        """Set an account's wallet balance (paper accounts start with the configured one)."""
        async with self.uow.begin() as conn:
            await tables.fund(conn, account, balance_usd)

    async def position(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        """The venue's position (signed quantity, entry price), as its position-risk endpoint would say."""
        async with self.uow.engine.connect() as conn:
            found = await tables.positions_of(conn, [(account, symbol)], lock=False)
        return found.get((account, symbol), (Decimal("0"), Decimal("0")))

    async def _marks_of(self, symbols: list[str]) -> list[Decimal | None]:
        async with self.uow.read() as conn:
            found = await tables.marks_of(conn, symbols)
        return [found.get(symbol) for symbol in symbols]

    # --- booking ----------------------------------------------------------------------

    async def _place_all(self, orders: list[MarketOrder]) -> list[OrderOutcome]:
        try:
            return await self._booked(orders)
        except _InDoubt as doubt:
            return await self._after_lost_commit(orders, doubt)
        except _NotCommitted as failure:
            if len(orders) == 1:
                return [
                    Rejected(
                        VENUE_UNAVAILABLE,
                        f"nothing was placed: {failure.__cause__!r}"[:500],
                        {"client_order_id": orders[0].client_order_id},
                        not_processed=True,
                    )
                ]
        return [outcome for order in orders for outcome in await self._place_all([order])]

    async def _booked(self, orders: list[MarketOrder]) -> list[OrderOutcome]:
        """The booking, again while the database is unavailable: a transaction that never committed placed nothing."""
        async for attempt in transient_retrying(
            "paper venue booking", hold_seconds=self.settings.booking_retry_seconds
        ):
            with attempt:
                return await self._in_one_transaction(orders)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _in_one_transaction(self, orders: list[MarketOrder]) -> list[OrderOutcome]:
        async with self.uow.engine.connect() as conn:
            # A checked-out connection always holds its driver's (asyncpg) connection; SQLAlchemy types it Optional.
            backend_pid = (await conn.get_raw_connection()).driver_connection.get_server_pid()  # type: ignore[union-attr]
            transaction = await conn.begin()
            try:
                outcomes = await booking.book(self.context, conn, orders)
            except Exception as error:
                log.exception("paper_orders_failed", orders=len(orders))
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise _NotCommitted from error
            lost: Exception | None = None
            try:
                await transaction.commit()
            except Exception as error:  # committed or not: its server process will know once it has ended
                lost = error
            if lost is not None:
                log.warning("paper_commit_in_doubt", orders=len(orders), error=repr(lost))
                with contextlib.suppress(Exception):
                    await conn.invalidate()  # the server process ends: no answer of it can come later
                # Raised outside the handler, so no transient cause is chained: booking again now could book twice.
                raise _InDoubt(backend_pid)
            self.uow.committed(conn)
        return outcomes

    async def _after_lost_commit(self, orders: list[MarketOrder], doubt: _InDoubt) -> list[OrderOutcome]:
        """All the orders booked (the commit happened), or none (it did not: they are booked again).

        Read only after the server process that ran the commit has ended: until then its
        transaction may still commit, and "not found" would not be an answer.
        """
        try:
            async for attempt in transient_retrying(
                "paper commit in doubt", hold_seconds=self.settings.booking_retry_seconds
            ):
                with attempt:
                    found = await self._booked_by(orders, doubt.backend_pid)
        except Exception as error:
            log.exception("paper_commit_failed", orders=len(orders))
            return [
                Unknown(f"paper venue commit failed: {type(error).__name__}", {"error": str(error)[:500]})
                for _ in orders
            ]
        if all(outcome is None for outcome in found):
            log.info("paper_commit_did_not_happen_booking_again", orders=len(orders))
            return await self._place_all(orders)
        return [outcome or Unknown("paper venue commit in doubt", {}) for outcome in found]

    async def _booked_by(self, orders: list[MarketOrder], backend_pid: int) -> list[OrderOutcome | None]:
        async with self.uow.engine.connect() as conn:
            running = await conn.execute(
                sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend_pid}
            )
            if running.first() is not None:
                raise _StillRunning(f"server process {backend_pid} has not ended")
            rows = [await tables.latest_order(conn, order.account, order.client_order_id) for order in orders]
        return [facts.filled(row) if row is not None else None for row in rows]
