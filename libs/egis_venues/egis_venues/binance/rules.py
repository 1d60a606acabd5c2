"""Symbol rules from `exchangeInfo`, fetched once per TTL and shared by every account."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from binance import AsyncClient

from egis_common.logs import get_logger
from egis_venues.binance.errors import MarketDataUnavailable, UnknownSymbol, market_data_unavailable
from egis_venues.binance.parse import symbol_rules
from egis_venues.port import SymbolRules

log = get_logger(__name__)


class SymbolRulesCache:
    """A failed refresh keeps serving the last rules: step and tick sizes change rarely."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._symbols: dict[str, Mapping[str, Any]] = {}
        self._fetched_at: float | None = None

    async def rules(self, client: AsyncClient, symbol: str) -> SymbolRules:
        if self._expired():
            await self._refresh(client)
        info = self._symbols.get(symbol)
        if info is None:
            raise UnknownSymbol(symbol)
        try:
            return symbol_rules(info)
        except (KeyError, ValueError) as error:
            raise MarketDataUnavailable(f"unreadable exchangeInfo filters for {symbol}: {error!r}") from error

    def _expired(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl_s

    async def _refresh(self, client: AsyncClient) -> None:
        try:
            body = await client.futures_exchange_info()
            symbols = {info["symbol"]: info for info in body["symbols"]}
        except Exception as error:  # the venue is down or answered nonsense
            if not self._symbols:
                raise market_data_unavailable(error) from error
            log.warning("binance_symbol_rules_stale", error=type(error).__name__)
            return
        self._symbols, self._fetched_at = symbols, self._clock()
