"""Binance USDⓈ-M Futures behind the exchange port, through python-binance's AsyncClient.

Each order method answers with one of the port's outcomes and never raises:
`binance_errors` maps every failure onto them. An order placement is sent again
only after the venue said it did not process it (a rate limit, a ban, a 503
that says so), and only within `resend_within_s`; an unanswered one is Unknown,
and `find_order` resolves it by the order's deterministic client id. A fill's fee and realised PnL come from
the order's trades, as USDⓈ-M RESULT answers do not carry the commission.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from binance import AsyncClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_random_exponential
from tenacity.stop import stop_base

from egis_common.logs import get_logger
from egis_venues.binance.client import BinanceClients, ClientFactory, client_factory
from egis_venues.binance.errors import (
    MarketDataUnavailable,
    UnknownSymbol,
    describe,
    is_duplicate_client_id,
    lookup_failure,
    market_data_unavailable,
    not_processed,
    placement_failure,
    retry_after_s,
    unknown_from,
)
from egis_venues.binance.parse import (
    FEE_ASSET,
    AccountTrade,
    VenueOrder,
    account_trade,
    filled,
    trades_cover,
    unexecuted_outcome,
    venue_decimal,
    venue_id,
    venue_order,
)
from egis_venues.binance.requests import invalid_market_order, invalid_stop, market_order_params, stop_params
from egis_venues.binance.rules import SymbolRulesCache
from egis_venues.binance.weights import WeightBudget, metered
from egis_venues.port import (
    Filled,
    LookupOutcome,
    MarketOrder,
    NotFound,
    OrderOutcome,
    Rejected,
    StopOrder,
    StopPlaced,
    SymbolRules,
    Unknown,
)
from egis_venues.settings import BinanceCredentials

log = get_logger(__name__)

# userTrades may lag the order's answer by a moment; look-ups are safe to repeat.
TRADE_LOOKUP_ATTEMPTS = 3
TRADE_LOOKUP_PAUSE_S = 0.2
OPEN_ALGO_STATUSES = frozenset({"NEW", "TRIGGERING"})


def _after_retry_after(state: RetryCallState) -> float:
    """Wait as long as the venue asked (Retry-After), or a short jittered backoff when it did not say."""
    error = state.outcome.exception() if state.outcome else None
    asked = retry_after_s(error) if error is not None else None
    return asked if asked is not None else wait_random_exponential(multiplier=0.2, max=2)(state)


class _RetryAfterTooFar(stop_base):
    """Stop at once when the venue asks to come back later than the time left for this order."""

    def __init__(self, within_s: float) -> None:
        self.within_s = within_s

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        asked = retry_after_s(error) if error is not None else None
        # tenacity times the outcome before it asks whether to stop, so the time since the start is set.
        return asked is not None and cast(float, state.seconds_since_start) + asked > self.within_s


class TradesIncomplete(Exception):
    """The venue's trades do not yet add up to the order's executed quantity."""


class BinanceExchange:
    def __init__(
        self,
        accounts: Mapping[str, BinanceCredentials],
        *,
        live: bool = False,
        base_url: str | None = None,
        request_timeout_s: float = 5.0,
        rules_ttl_s: float = 3600.0,
        factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        weights: WeightBudget | None = None,
        resend_within_s: float = 8.0,
    ) -> None:
        self.resend_within_s = resend_within_s
        factory = factory or client_factory(live=live, base_url=base_url, request_timeout_s=request_timeout_s)
        if weights is not None:  # every request counted against a share of the venue's weight per minute
            factory = metered(factory, weights)
        self._clients = BinanceClients(accounts, factory)
        self.weights = weights
        self._rules = SymbolRulesCache(rules_ttl_s, clock)

    async def close(self) -> None:
        await self._clients.close()

    # --- market data: raises MarketDataUnavailable or UnknownSymbol (the port has no outcome) ---

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        return await self._rules.rules(self._clients.public(), symbol)

    async def mark_price(self, symbol: str) -> Decimal:
        try:
            body = await self._clients.public().futures_mark_price(symbol=symbol)
            return venue_decimal(body["markPrice"])
        except Exception as error:  # infrastructure or shape: one exception type for the caller
            raise market_data_unavailable(error) from error

    # --- orders ------------------------------------------------------------------------------

    async def place_market_order(self, order: MarketOrder) -> OrderOutcome:
        client = self._clients.for_account(order.account)
        if client is None:
            return _unknown_account(order.account)
        if (invalid := invalid_market_order(order)) is not None:
            return invalid
        try:
            body = await self._sent(client, market_order_params(order))
        except Exception as error:  # every failure becomes an outcome: nothing escapes the port
            return placement_failure(error, account=order.account, client_id=order.client_order_id)
        return await self._settled(client, order.symbol, body)

    async def _sent(self, client: AsyncClient, params: dict[str, Any]) -> dict[str, Any]:
        """The order, sent again while the venue says it did not process it and says when to come back in time."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(not_processed),
            wait=_after_retry_after,
            stop=stop_after_delay(self.resend_within_s) | _RetryAfterTooFar(self.resend_within_s),
            reraise=True,
        ):
            with attempt:
                body: dict[str, Any] = await client.futures_create_order(**params)
                return body
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def find_order(
        self, account: str, symbol: str, client_order_id: str, not_after: datetime | None = None
    ) -> LookupOutcome:
        """`not_after` is ignored: no lock of ours holds a booking on Binance off, and its clock is not ours,
        so "not found" is never final here; the reconciler's not-found window decides."""
        client = self._clients.for_account(account)
        if client is None:
            # Not "not found": without credentials we cannot know what the account holds.
            return Unknown("unknown_account", {"account": account})
        try:
            body = await client.futures_get_order(symbol=symbol, origClientOrderId=client_order_id)
        except Exception as error:
            return lookup_failure(error)
        return await self._settled(client, symbol, body)

    async def order_status(self, account: str, symbol: str, **ref: str) -> dict[str, Any] | NotFound | Unknown:
        """The venue's own view of one order (orderId, origClientOrderId) or algo order (clientAlgoId), raw."""
        client = self._clients.for_account(account)
        if client is None:
            return Unknown("unknown_account", {"account": account})
        try:
            body: dict[str, Any] = await client.futures_get_order(symbol=symbol, **ref)
        except Exception as error:
            return lookup_failure(error)
        return body

    async def place_stop(self, order: StopOrder) -> StopPlaced | Rejected | Unknown:
        client = self._clients.for_account(order.account)
        if client is None:
            return _unknown_account(order.account)
        if (invalid := invalid_stop(order)) is not None:
            return invalid
        try:
            rules = await self.symbol_rules(order.symbol)
        except UnknownSymbol:
            return Rejected("unknown_symbol", f"the venue does not list {order.symbol}")
        except MarketDataUnavailable as error:
            # Nothing was sent, but a stop must not be given up on: retrying place_stop is safe.
            return Unknown(f"symbol_rules_unavailable: {error}")
        return await self._send_stop(client, order, rules)

    async def account_trades(self, account: str, symbol: str, order_id: str) -> list[AccountTrade] | Unknown:
        """The order's fills, with Decimal price, qty, commission and realised PnL."""
        client = self._clients.for_account(account)
        if client is None:
            return Unknown("unknown_account", {"account": account})
        try:
            return await _fetch_trades(client, symbol, order_id)
        except Exception as error:
            return unknown_from(error)

    # --- helpers -----------------------------------------------------------------------------

    async def _settled(self, client: AsyncClient, symbol: str, body: dict[str, Any]) -> Filled | Rejected | Unknown:
        """The outcome of an order the venue showed us; it existed, so never a placement failure."""
        try:
            order = venue_order(body)
            if (outcome := unexecuted_outcome(order)) is not None:
                return outcome
            return filled(order, await _trades_covering(client, symbol, order))
        except Exception as error:  # the order is real; only its details are missing: look it up later
            cause, evidence = describe(error)
            log.warning("binance_fill_details_unavailable", symbol=symbol, cause=cause)
            return Unknown(f"fill_details_unavailable: {cause}", {"order": body, "error": evidence})

    async def _send_stop(
        self, client: AsyncClient, order: StopOrder, rules: SymbolRules
    ) -> StopPlaced | Rejected | Unknown:
        try:
            body = await client.futures_create_algo_order(**stop_params(order, rules))
            return StopPlaced(venue_id(body["algoId"]), order.client_algo_id)
        except Exception as error:
            if is_duplicate_client_id(error):
                return await _open_stop(client, order)
            return placement_failure(error, account=order.account, client_id=order.client_algo_id)


async def _fetch_trades(client: AsyncClient, symbol: str, order_id: str) -> list[AccountTrade]:
    bodies = await client.futures_account_trades(symbol=symbol, orderId=order_id)
    trades = [account_trade(body) for body in bodies]
    if any(t.commission_asset != FEE_ASSET for t in trades):
        # fee_usd sums USDT only: a BNB fee discount would understate it. Loud, not silent.
        log.error("binance_fee_not_in_usdt", symbol=symbol, order_id=order_id)
    return trades


async def _trades_covering(client: AsyncClient, symbol: str, order: VenueOrder) -> list[AccountTrade]:
    for attempt in range(TRADE_LOOKUP_ATTEMPTS):
        if attempt:
            await asyncio.sleep(TRADE_LOOKUP_PAUSE_S)
        trades = await _fetch_trades(client, symbol, order.order_id)
        if trades_cover(order, trades):
            return trades
    raise TradesIncomplete(f"trades of order {order.order_id} do not add up to {order.executed_qty}")


async def _open_stop(client: AsyncClient, order: StopOrder) -> StopPlaced | Unknown:
    """-4116: an open algo order already has our deterministic id, most likely our earlier attempt."""
    try:
        body = await client.futures_get_order(symbol=order.symbol, clientAlgoId=order.client_algo_id)
    except Exception as error:
        return unknown_from(error)
    if body.get("algoStatus") in OPEN_ALGO_STATUSES:
        return StopPlaced(venue_id(body["algoId"]), order.client_algo_id)
    return Unknown("duplicate_client_algo_id", body)


def _unknown_account(account: str) -> Rejected:
    return Rejected(
        "unknown_account", f"no Binance credentials configured for account {account!r}", {"account": account}
    )
