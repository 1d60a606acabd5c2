"""The exchange port: what a service asks of a venue, and the only three answers it accepts.

Two adapters implement it: the paper exchange (`egis_venues.paper`) and
Binance USDⓈ-M Futures through python-binance (`egis_venues.binance`).
An adapter translates every infrastructure error into one of these outcomes;
nothing else escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import Enum
from typing import Any, Protocol


class OrderSide(str, Enum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True)
class SymbolRules:
    symbol: str
    step_size: Decimal  # quantity granularity (LOT_SIZE.stepSize)
    tick_size: Decimal  # price granularity (PRICE_FILTER.tickSize)
    min_qty: Decimal
    min_notional_usd: Decimal  # MIN_NOTIONAL.notional

    def quantity_for(self, size_usd: Decimal, price: Decimal) -> Decimal:
        """The largest tradable quantity worth at most `size_usd`: rounded DOWN to the step size.

        This rounding is why executed size differs from requested size.
        """
        return (size_usd / price / self.step_size).to_integral_value(rounding=ROUND_DOWN) * self.step_size

    def price_on_tick(self, price: Decimal) -> Decimal:
        return (price / self.tick_size).to_integral_value(rounding=ROUND_DOWN) * self.tick_size


@dataclass(frozen=True)
class MarketOrder:
    account: str  # the bot's exchange account reference
    symbol: str
    side: OrderSide
    quantity: Decimal
    client_order_id: str  # deterministic, from egis_common.ids.client_order_id
    reduce_only: bool  # closes are reduce-only: they can never open the opposite side
    # When the caller stops waiting for this call (aware UTC). A venue that can hold to it (the paper venue)
    # refuses the order after it, so a look-up after it can say "not found" for good; Binance cannot, and
    # ignores it.
    not_after: datetime | None = None


@dataclass(frozen=True)
class StopOrder:
    """A take-profit or stop-loss that closes the whole position when the mark price crosses it."""

    account: str
    symbol: str
    side: OrderSide  # the closing side: SELL for a long, BUY for a short
    kind: str  # "TAKE_PROFIT_MARKET" or "STOP_MARKET"
    trigger_price: Decimal
    client_algo_id: str  # deterministic, from egis_common.ids.client_order_id(intent, purpose)


@dataclass(frozen=True)
class Filled:
    exchange_order_id: str
    executed_qty: Decimal
    avg_price: Decimal
    fee_usd: Decimal
    filled_at: datetime
    realised_pnl_usd: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """A definitive refusal: the order does not exist on the exchange."""

    code: str  # the exchange's code, e.g. "-2019"
    message: str
    raw: dict[str, Any] = field(default_factory=dict)
    # The venue said it never processed the order (a rate limit, a ban, the venue unavailable), as opposed to
    # refusing it on its merits (margin, reduce-only): the same order, same client order id, may be sent again.
    not_processed: bool = False
    retry_after_s: float | None = None  # when the venue said how long to wait before asking again


@dataclass(frozen=True)
class Unknown:
    """The outcome cannot be known now (timeout, 5xx, connection lost). Never a rejection."""

    cause: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotFound:
    """A look-up by client order id found nothing.

    `final`: nothing can book the order any more (its `not_after` has passed on the venue's clock, and no booking
    of it is in flight), so it is absent for good. Otherwise it may still show up: a booking in flight, or a
    venue across the network that has not shown it yet.
    """

    final: bool = False


@dataclass(frozen=True)
class StopRef:
    """A take-profit or stop-loss of ours as the venue knows it: the venue's algo id once it answered."""

    client_algo_id: str
    algo_id: str | None
    symbol: str


@dataclass(frozen=True)
class StopPlaced:
    algo_id: str
    client_algo_id: str


OrderOutcome = Filled | Rejected | Unknown
LookupOutcome = Filled | Rejected | Unknown | NotFound


class ExchangePort(Protocol):
    """A venue. A port may also say `batches_concurrent_calls = True`: it serves the orders it is
    given together in batches of its own (the paper venue: one transaction), so the executor does
    not bound how many it hands over at once (`exchange_concurrency` bounds the others)."""

    async def symbol_rules(self, symbol: str) -> SymbolRules: ...

    async def mark_price(self, symbol: str) -> Decimal: ...

    async def place_market_order(self, order: MarketOrder) -> OrderOutcome: ...

    async def find_order(
        self, account: str, symbol: str, client_order_id: str, not_after: datetime | None = None
    ) -> LookupOutcome:
        """`not_after`: the order's, when known; a venue that holds to it may answer a final NotFound."""
        ...

    async def place_stop(self, order: StopOrder) -> StopPlaced | Rejected | Unknown: ...
