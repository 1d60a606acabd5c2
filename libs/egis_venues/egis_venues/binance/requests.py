"""The parameters Egis sends to Binance USDⓈ-M, every option spelled out. Pure: no I/O.

Quantities and prices go as plain decimal strings ("0.002", never 2e-3 nor a
float), booleans as "true"/"false", ids as the deterministic ones Egis derived,
so a resent or looked-up request always names the same order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from egis_common.money import format_decimal
from egis_venues.port import MarketOrder, Rejected, StopOrder, SymbolRules

STOP_KINDS = frozenset({"TAKE_PROFIT_MARKET", "STOP_MARKET"})


def market_order_params(order: MarketOrder) -> dict[str, Any]:
    params: dict[str, Any] = {
        "symbol": order.symbol,
        "side": order.side.value,
        "type": "MARKET",
        "quantity": format_decimal(order.quantity),
        "newClientOrderId": order.client_order_id,
        # RESULT: the answer shows the order after its fill (executedQty, avgPrice, cumQuote);
        # the futures default ACK would show it NEW.
        "newOrderRespType": "RESULT",
    }
    if order.reduce_only:
        params["reduceOnly"] = "true"  # a close can shrink the position, never flip it
    return params


def stop_params(order: StopOrder, rules: SymbolRules) -> dict[str, Any]:
    """A close-position conditional order on the Algo Service."""
    return {
        "algoType": "CONDITIONAL",
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.kind,
        "triggerPrice": format_decimal(rules.price_on_tick(order.trigger_price)),
        # Closes whatever the position is when it triggers: no quantity, no reduceOnly.
        "closePosition": "true",
        # The venue's default is the last contract price; Egis reasons in mark prices.
        "workingType": "MARK_PRICE",
        # Without it python-binance would invent a random id the reconciler could not find.
        "clientAlgoId": order.client_algo_id,
    }


def invalid_market_order(order: MarketOrder) -> Rejected | None:
    """Refuse locally, with nothing sent, what can never be a valid order."""
    if not order.quantity.is_finite() or order.quantity <= Decimal(0):
        return Rejected("invalid_quantity", f"quantity {order.quantity} is not a positive decimal")
    return None


def invalid_stop(order: StopOrder) -> Rejected | None:
    if order.kind not in STOP_KINDS:
        return Rejected("invalid_stop_kind", f"{order.kind!r} is not one of {sorted(STOP_KINDS)}")
    if not order.trigger_price.is_finite() or order.trigger_price <= Decimal(0):
        return Rejected("invalid_trigger_price", f"trigger price {order.trigger_price} is not positive")
    return None
