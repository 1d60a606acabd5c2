"""Binance USDⓈ-M response bodies -> the port's values. Pure: no I/O.

The venue sends amounts as strings and ids and times as numbers, but not
always (recorded bodies carry ids and times as strings too), so every field is
read through `venue_decimal`, `venue_id` or `venue_time`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from egis_common.money import parse_decimal
from egis_venues.port import Filled, OrderSide, Rejected, SymbolRules, Unknown

ZERO = Decimal("0")
FEE_ASSET = "USDT"
# Statuses after which an order with nothing executed can never fill.
ENDED_STATUSES = frozenset({"CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"})


def venue_decimal(value: Any) -> Decimal:
    """A decimal string as is; a JSON number via its shortest text, never via float arithmetic."""
    if isinstance(value, bool):
        raise ValueError(f"expected a decimal, got {value!r}")
    if isinstance(value, int | float):
        number = Decimal(str(value))  # str(0.1) == "0.1": the text the venue sent, not the binary float
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        return number
    return parse_decimal(value)


def venue_id(value: Any) -> str:
    return str(int(value)) if isinstance(value, int) else str(value)


def venue_time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)


def symbol_rules(symbol_info: Mapping[str, Any]) -> SymbolRules:
    """One `exchangeInfo.symbols[]` entry; USDⓈ-M names the minimum notional `notional`."""
    filters = {f["filterType"]: f for f in symbol_info["filters"]}
    lot, price, notional = filters["LOT_SIZE"], filters["PRICE_FILTER"], filters["MIN_NOTIONAL"]
    return SymbolRules(
        symbol=symbol_info["symbol"],
        step_size=venue_decimal(lot["stepSize"]),
        tick_size=venue_decimal(price["tickSize"]),
        min_qty=venue_decimal(lot["minQty"]),
        min_notional_usd=venue_decimal(notional["notional"]),
    )


@dataclass(frozen=True)
class VenueOrder:
    """A regular order as POST (RESULT) or GET /fapi/v1/order shows it."""

    order_id: str
    client_order_id: str
    status: str
    executed_qty: Decimal
    avg_price: Decimal
    cum_quote_usd: Decimal
    updated_at: datetime
    raw: dict[str, Any] = field(repr=False)


def venue_order(body: Mapping[str, Any]) -> VenueOrder:
    return VenueOrder(
        order_id=venue_id(body["orderId"]),
        client_order_id=body["clientOrderId"],
        status=body["status"],
        executed_qty=venue_decimal(body["executedQty"]),
        avg_price=venue_decimal(body["avgPrice"]),
        cum_quote_usd=venue_decimal(body["cumQuote"]),
        updated_at=venue_time(body["updateTime"]),
        raw=dict(body),
    )


@dataclass(frozen=True)
class AccountTrade:
    """One fill of an order (GET /fapi/v1/userTrades): the facts fees and realised PnL come from."""

    trade_id: str
    order_id: str
    symbol: str
    side: OrderSide
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    realised_pnl_usd: Decimal
    maker: bool
    traded_at: datetime
    raw: dict[str, Any] = field(repr=False)


def account_trade(body: Mapping[str, Any]) -> AccountTrade:
    return AccountTrade(
        trade_id=venue_id(body["id"]),
        order_id=venue_id(body["orderId"]),
        symbol=body["symbol"],
        side=OrderSide(body["side"]),
        price=venue_decimal(body["price"]),
        qty=venue_decimal(body["qty"]),
        quote_qty=venue_decimal(body["quoteQty"]),
        commission=venue_decimal(body["commission"]),
        commission_asset=body["commissionAsset"],
        realised_pnl_usd=venue_decimal(body["realizedPnl"]),
        maker=bool(body["maker"]),
        traded_at=venue_time(body["time"]),
        raw=dict(body),
    )


def unexecuted_outcome(order: VenueOrder) -> Rejected | Unknown | None:
    """The outcome of an order with nothing executed; None once anything executed.

    A market order that EXPIRED after a partial fill executed: it is a fill. One
    that ended with nothing executed never will: a rejection (its client id is
    free again, as ids are unique only among open orders). NEW means accepted
    and not filled yet: Unknown, to be looked up again.
    """
    if order.executed_qty > ZERO:
        return None
    if order.status in ENDED_STATUSES:
        message = f"the venue ended the order {order.status} with nothing executed"
        return Rejected(order.status, message, order.raw)
    return Unknown(f"order_{order.status.lower()}", order.raw)


def trades_cover(order: VenueOrder, trades: Iterable[AccountTrade]) -> bool:
    """Whether the trades account for the whole executed quantity (the venue may lag behind)."""
    return sum((t.qty for t in trades), ZERO) == order.executed_qty


def filled(order: VenueOrder, trades: list[AccountTrade]) -> Filled:
    """A fill from the order and its trades; fees are the USDT commissions of those trades."""
    return Filled(
        exchange_order_id=order.order_id,
        executed_qty=order.executed_qty,
        avg_price=_average_price(order),
        fee_usd=sum((t.commission for t in trades if t.commission_asset == FEE_ASSET), ZERO),
        filled_at=order.updated_at,
        realised_pnl_usd=sum((t.realised_pnl_usd for t in trades), ZERO),
        raw={"order": order.raw, "trades": [t.raw for t in trades]},
    )


def _average_price(order: VenueOrder) -> Decimal:
    # Some answers carry avgPrice "0" next to a real cumQuote; the quote total is the fact.
    if order.avg_price > ZERO:
        return order.avg_price
    return order.cum_quote_usd / order.executed_qty
