"""Before any transaction: the order each reservation leads to, from the venue's market data.

An open buys what its requested size is worth at the mark price, rounded down
to the step size; a close sells (or buys back) the quantity the ledger holds.
When the market data cannot be had, nothing is sent: that is a definitive
refusal, and the reservation is released.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from egis_common import contracts as c
from executor import domain
from executor.domain import Intent
from egis_venues.port import ExchangePort, MarketOrder, Rejected, SymbolRules
from executor.metrics import EXCHANGE_SECONDS

T = TypeVar("T")
Quote = tuple[SymbolRules, Decimal] | Rejected


@dataclass(frozen=True)
class Attempt:
    intent: Intent
    answer: c.BudgetReserved | None  # None: a close sent again (no answer of the ledger led to this attempt)
    order: MarketOrder | Rejected  # Rejected: nothing can be sent
    rules: SymbolRules | None = None


async def timed(call: Awaitable[T], exchange: c.ExchangeName, operation: str, timeout_seconds: float) -> T:
    """An exchange call, bounded by a timeout (TimeoutError) and measured."""
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(call, timeout_seconds)
    finally:
        EXCHANGE_SECONDS.labels(exchange.value, operation).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class Planner:
    exchanges: Mapping[c.ExchangeName, ExchangePort]
    timeout_seconds: float

    async def plan(self, batch: list[tuple[Intent, c.BudgetReserved]]) -> list[Attempt]:
        """Market data is fetched once per exchange and symbol of the batch."""
        quotes: dict[tuple[c.ExchangeName, str], asyncio.Future] = {}
        return list(await asyncio.gather(*(self._attempt(intent, answer, quotes) for intent, answer in batch)))

    async def _attempt(self, intent: Intent, answer: c.BudgetReserved, quotes: dict) -> Attempt:
        if intent.exchange not in self.exchanges:
            return Attempt(intent, answer, Rejected("exchange_unavailable", f"no {intent.exchange.value} adapter"))
        if intent.kind is c.IntentKind.CLOSE:
            intent = dataclasses.replace(intent, side=answer.side)  # the ledger names the position's side
            quantity = domain.order_quantity(intent, answer, None, None)
            return Attempt(intent, answer, domain.market_order(intent, quantity))
        key = (intent.exchange, intent.symbol)
        if key not in quotes:
            quotes[key] = asyncio.ensure_future(self._quote(intent))
        quote = await quotes[key]
        if isinstance(quote, Rejected):
            return Attempt(intent, answer, quote)
        rules, mark = quote
        quantity = domain.order_quantity(intent, answer, rules, mark)
        return Attempt(intent, answer, domain.market_order(intent, quantity), rules)

    async def _quote(self, intent: Intent) -> Quote:
        port, exchange, timeout = self.exchanges[intent.exchange], intent.exchange, self.timeout_seconds
        try:
            rules = await timed(port.symbol_rules(intent.symbol), exchange, "symbol_rules", timeout)
        except LookupError as error:
            return Rejected("unknown_symbol", f"{intent.symbol}: {error!r}"[:500])
        except Exception as error:
            return Rejected("market_data_unavailable", f"{intent.symbol}: {error!r}"[:500])
        try:
            return rules, await timed(port.mark_price(intent.symbol), exchange, "mark_price", timeout)
        except Exception as error:
            return Rejected("no_mark_price", f"{intent.symbol}: {error!r}"[:500])
