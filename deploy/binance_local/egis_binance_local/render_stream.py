"""User data stream events, field for field as USDⓈ-M Futures pushes them.

`ORDER_TRADE_UPDATE` for every order change (NEW, TRADE, CANCELED, EXPIRED),
with the execution's quantity, price, commission, realised profit and trade id;
`ALGO_UPDATE` for every algo order change; `listenKeyExpired` when the key
ends. Ids and times are JSON numbers, amounts strings, as on the venue.
"""

from __future__ import annotations

from typing import Any

from egis_binance_local.model import AlgoOrder, Order, Trade
from egis_binance_local.money import ZERO, render_usdt, to_places
from egis_binance_local.render import avg_price
from egis_binance_local.symbols import SymbolSpec


def order_trade_update(
    order: Order, spec: SymbolSpec, execution: str, trade: Trade | None, now_ms: int
) -> dict[str, Any]:
    qty, price = spec.quantity_precision, spec.price_precision
    traded_ms = trade.time_ms if trade else order.update_ms
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now_ms,
        "T": traded_ms,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": to_places(order.quantity, qty),
            "p": to_places(order.price, price),
            "ap": avg_price(order, spec),
            "sp": to_places(ZERO, price),
            "x": execution,
            "X": order.status,
            "i": order.order_id,
            "l": to_places(trade.qty if trade else ZERO, qty),
            "z": to_places(order.executed_qty, qty),
            "L": to_places(trade.price if trade else ZERO, price),
            "N": trade.commission_asset if trade else "USDT",
            "n": render_usdt(trade.commission) if trade else "0",
            "T": traded_ms,
            "t": trade.trade_id if trade else 0,
            "b": "0",
            "a": "0",
            "m": trade.maker if trade else False,
            "R": order.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": order.orig_type,
            "ps": "BOTH",
            "cp": order.close_position,
            "rp": _realised(trade),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def _realised(trade: Trade | None) -> str:
    if trade is None or not trade.realized_pnl:
        return "0"
    return render_usdt(trade.realized_pnl)


def algo_update(algo: AlgoOrder, spec: SymbolSpec, actual: Order | None, now_ms: int) -> dict[str, Any]:
    price = spec.price_precision
    return {
        "e": "ALGO_UPDATE",
        "T": algo.update_ms,
        "E": now_ms,
        "o": {
            "caid": algo.client_algo_id,
            "aid": algo.algo_id,
            "at": "CONDITIONAL",
            "o": algo.order_type,
            "s": algo.symbol,
            "S": algo.side,
            "ps": "BOTH",
            "f": algo.time_in_force,
            "q": to_places(algo.quantity, spec.quantity_precision),
            "X": algo.status,
            # The order the trigger placed in the matching engine: "" until then.
            "ai": "" if actual is None else str(actual.order_id),
            "ap": avg_price(actual, spec),
            "aq": to_places(actual.executed_qty if actual else ZERO, spec.quantity_precision),
            "act": "" if actual is None else actual.type,
            "tp": to_places(algo.trigger_price, price),
            "p": to_places(ZERO, price),
            "V": "EXPIRE_MAKER",
            "wt": algo.working_type,
            "pm": "NONE",
            "cp": algo.close_position,
            "pP": algo.price_protect,
            "R": algo.reduce_only,
            "tt": algo.trigger_ms,
            "gtd": 0,
        },
    }


def listen_key_expired(listen_key: str, now_ms: int) -> dict[str, Any]:
    return {"e": "listenKeyExpired", "E": now_ms, "listenKey": listen_key}
