"""JSON shapes of orders, algo orders and trades, field for field as the venue sends them.

Ids and times are JSON numbers; prices, quantities and amounts are strings.
"""

from __future__ import annotations

from typing import Any

from egis_binance_local.model import AlgoOrder, Order, Trade
from egis_binance_local.money import ZERO, render_plain, render_usdt, to_places
from egis_binance_local.symbols import SymbolSpec


def order_result(order: Order, spec: SymbolSpec) -> dict[str, Any]:
    """Answer of POST and DELETE /fapi/v1/order: carries `cumQty`, no `time`."""
    shape = _order_common(order, spec)
    shape["cumQty"] = to_places(order.executed_qty, spec.quantity_precision)
    return _with_tail(shape, order)


def order_query(order: Order, spec: SymbolSpec) -> dict[str, Any]:
    """Answer of GET /fapi/v1/order and the open/all order lists: carries `time`, no `cumQty`."""
    shape = _order_common(order, spec)
    shape["time"] = order.time_ms
    return _with_tail(shape, order)


def _order_common(order: Order, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": to_places(order.price, spec.price_precision),
        "avgPrice": avg_price(order, spec),
        "origQty": to_places(order.quantity, spec.quantity_precision),
        "executedQty": to_places(order.executed_qty, spec.quantity_precision),
        "cumQuote": to_places(order.cum_quote, spec.price_precision + spec.quantity_precision),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": to_places(ZERO, spec.price_precision),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": order.orig_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
    }


def avg_price(order: Order | None, spec: SymbolSpec) -> str:
    return to_places(order.avg_price if order else ZERO, max(5, spec.price_precision))


def _with_tail(shape: dict[str, Any], order: Order) -> dict[str, Any]:
    shape["updateTime"] = order.update_ms
    return shape


def algo_placed(algo: AlgoOrder, spec: SymbolSpec) -> dict[str, Any]:
    """Answer of POST /fapi/v1/algoOrder."""
    return {
        **_algo_head(algo, spec),
        "triggerPrice": to_places(algo.trigger_price, spec.price_precision),
        "price": to_places(ZERO, spec.price_precision),
        "icebergQuantity": None,
        **_algo_flags(algo),
        "activatePrice": "",
        "callbackRate": "",
        **_algo_times(algo),
    }


def algo_query(algo: AlgoOrder, spec: SymbolSpec, actual: Order | None) -> dict[str, Any]:
    """Answer of GET /fapi/v1/algoOrder and the algo order lists: adds the order it spawned."""
    zero_price = to_places(ZERO, spec.price_precision)
    return {
        **_algo_head(algo, spec),
        # A string on the venue, "" until the trigger placed an order.
        "actualOrderId": "" if actual is None else str(actual.order_id),
        "actualPrice": avg_price(actual, spec),
        "triggerPrice": to_places(algo.trigger_price, spec.price_precision),
        "price": zero_price,
        "icebergQuantity": None,
        "tpTriggerPrice": zero_price,
        "tpPrice": zero_price,
        "slTriggerPrice": zero_price,
        "slPrice": zero_price,
        "tpOrderType": "",
        **_algo_flags(algo),
        **_algo_times(algo),
    }


def _algo_head(algo: AlgoOrder, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": "BOTH",
        "timeInForce": algo.time_in_force,
        "quantity": to_places(algo.quantity, spec.quantity_precision),
        "algoStatus": algo.status,
    }


def _algo_flags(algo: AlgoOrder) -> dict[str, Any]:
    return {
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": algo.price_protect,
        "reduceOnly": algo.reduce_only,
    }


def _algo_times(algo: AlgoOrder) -> dict[str, Any]:
    return {
        "createTime": algo.create_ms,
        "updateTime": algo.update_ms,
        "triggerTime": algo.trigger_ms,
        "goodTillDate": 0,
    }


def algo_canceled(algo: AlgoOrder) -> dict[str, Any]:
    # The venue answers a cancel with a status envelope, `code` as a string.
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}


def trade(trade: Trade, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "side": trade.side,
        "price": to_places(trade.price, spec.price_precision),
        "qty": to_places(trade.qty, spec.quantity_precision),
        "realizedPnl": render_plain(trade.realized_pnl) if not trade.realized_pnl else render_usdt(trade.realized_pnl),
        "marginAsset": "USDT",
        "quoteQty": to_places(trade.quote_qty, spec.price_precision + spec.quantity_precision),
        "commission": render_usdt(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "positionSide": "BOTH",
        "maker": trade.maker,
        "buyer": trade.side == "BUY",
    }
