"""The USDⓈ-M Futures REST endpoints for orders, algo orders and trades: one short function each.

Each handler takes a `Call` (the venue, the authenticated account, the
parameters) and returns the JSON body; errors are raised as `BinanceError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egis_binance_local import algos, errors, intake, orders, params, render
from egis_binance_local.auth import Security
from egis_binance_local.model import Account, AlgoOrder
from egis_binance_local.params import Params
from egis_binance_local.symbols import exchange_info

if TYPE_CHECKING:
    from egis_binance_local.venue import Venue

ALL_OPEN_CANCELED = {"code": 200, "msg": "The operation of cancel all open order is done."}


@dataclass(frozen=True)
class Call:
    venue: Venue
    account: Account | None
    params: Params

    @property
    def me(self) -> Account:
        assert self.account is not None, "route is not authenticated"
        return self.account


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    security: Security
    handle: Callable[[Call], Any]
    weight: Callable[[Params], int]


def weight(plain: int, without_symbol: int | None = None) -> Callable[[Params], int]:
    """Some lists cost more without a symbol, as on the venue."""
    return lambda p: without_symbol if without_symbol is not None and not params.text(p, "symbol") else plain


# --- market data --------------------------------------------------------------


def ping(call: Call) -> Any:
    return {}


def server_time(call: Call) -> Any:
    return {"serverTime": call.venue.exchange.clock()}


def get_exchange_info(call: Call) -> Any:
    exchange = call.venue.exchange
    return exchange_info(list(exchange.specs.values()), exchange.clock(), call.venue.meter.limit)


# --- regular orders -------------------------------------------------------------


def post_order(call: Call) -> Any:
    request = intake.order_request(call.params)
    placement = orders.place(call.venue.exchange, call.me, request)
    shown = placement.final if request.response_type == "RESULT" else placement.accepted
    return render.order_result(shown, call.venue.exchange.spec(shown.symbol))


def _order_ref(p: Params) -> tuple[str, int | None, str | None]:
    symbol = params.required(p, "symbol")
    order_id, client_id = params.integer(p, "orderId"), params.text(p, "origClientOrderId")
    if order_id is None and client_id is None:
        raise errors.either_of("orderId", "origClientOrderId")
    return symbol, order_id, client_id


def get_order(call: Call) -> Any:
    symbol, order_id, client_id = _order_ref(call.params)
    spec = call.venue.exchange.spec(symbol)
    order = orders.find(call.me, symbol, order_id, client_id)
    if order is None:
        raise errors.order_does_not_exist()
    return render.order_query(order, spec)


def delete_order(call: Call) -> Any:
    symbol, order_id, client_id = _order_ref(call.params)
    spec = call.venue.exchange.spec(symbol)
    return render.order_result(orders.cancel(call.venue.exchange, call.me, symbol, order_id, client_id), spec)


def _optional_symbol(call: Call) -> str | None:
    symbol = params.text(call.params, "symbol")
    if symbol is not None:
        call.venue.exchange.spec(symbol)
    return symbol


def get_open_orders(call: Call) -> Any:
    exchange = call.venue.exchange
    return [render.order_query(o, exchange.spec(o.symbol)) for o in call.me.open_orders(_optional_symbol(call))]


def get_all_orders(call: Call) -> Any:
    p, exchange = call.params, call.venue.exchange
    spec = exchange.spec(params.required(p, "symbol"))
    from_id = params.integer(p, "orderId") or 0
    found = [o for o in call.me.orders.values() if o.symbol == spec.symbol and o.order_id >= from_id]
    found = _in_time_range(found, p, lambda o: o.time_ms)
    return [render.order_query(o, spec) for o in _limited(found, p, from_start=from_id > 0)]


def delete_all_open_orders(call: Call) -> Any:
    symbol = call.venue.exchange.spec(params.required(call.params, "symbol")).symbol
    for order in call.me.open_orders(symbol):
        orders.cancel(call.venue.exchange, call.me, symbol, order.order_id, None)
    return ALL_OPEN_CANCELED


# --- algo orders ------------------------------------------------------------------


def post_algo_order(call: Call) -> Any:
    algo = algos.place(call.venue.exchange, call.me, intake.algo_request(call.params))
    return render.algo_placed(algo, call.venue.exchange.spec(algo.symbol))


def _algo_ref(p: Params) -> tuple[int | None, str | None]:
    # The venue documents `algoid` / `clientalgoid`; python-binance sends `algoId` / `clientAlgoId`.
    id_name = params.first_present(p, "algoId", "algoid")
    client_name = params.first_present(p, "clientAlgoId", "clientalgoid")
    if id_name is None and client_name is None:
        raise errors.either_of("algoId", "clientAlgoId")
    algo_id = params.integer(p, id_name) if id_name else None
    return algo_id, params.text(p, client_name) if client_name else None


def render_algo(call: Call, algo: AlgoOrder) -> dict[str, Any]:
    actual = call.me.orders.get(algo.actual_order_id) if algo.actual_order_id else None
    return render.algo_query(algo, call.venue.exchange.spec(algo.symbol), actual)


def get_algo_order(call: Call) -> Any:
    algo = algos.find(call.me, *_algo_ref(call.params))
    if algo is None:
        raise errors.order_does_not_exist()
    return render_algo(call, algo)


def delete_algo_order(call: Call) -> Any:
    return render.algo_canceled(algos.cancel(call.venue.exchange, call.me, *_algo_ref(call.params)))


def get_open_algo_orders(call: Call) -> Any:
    return [render_algo(call, a) for a in call.me.open_algo_orders(_optional_symbol(call))]


def get_all_algo_orders(call: Call) -> Any:
    symbol = call.venue.exchange.spec(params.required(call.params, "symbol")).symbol
    found = [a for a in call.me.algo_orders.values() if a.symbol == symbol]
    found = _in_time_range(found, call.params, lambda a: a.create_ms)
    return [render_algo(call, a) for a in _limited(found, call.params, from_start=False)]


def delete_algo_open_orders(call: Call) -> Any:
    symbol = call.venue.exchange.spec(params.required(call.params, "symbol")).symbol
    for algo in call.me.open_algo_orders(symbol):
        algos.cancel(call.venue.exchange, call.me, algo.algo_id, None)
    return ALL_OPEN_CANCELED


# --- trades -----------------------------------------------------------------------


def get_user_trades(call: Call) -> Any:
    p = call.params
    spec = call.venue.exchange.spec(params.required(p, "symbol"))
    order_id, from_id = params.integer(p, "orderId"), params.integer(p, "fromId")
    found = [t for t in call.me.trades if t.symbol == spec.symbol and order_id in (None, t.order_id)]
    found = [t for t in found if from_id is None or t.trade_id >= from_id]
    found = _in_time_range(found, p, lambda t: t.time_ms)
    return [render.trade(t, spec) for t in _limited(found, p, from_start=from_id is not None)]


def _in_time_range(items: list[Any], p: Params, time_of: Callable[[Any], int]) -> list[Any]:
    start, end = params.integer(p, "startTime"), params.integer(p, "endTime")
    return [i for i in items if (start is None or time_of(i) >= start) and (end is None or time_of(i) <= end)]


def _limited(items: list[Any], p: Params, *, from_start: bool) -> list[Any]:
    # Paging forward from an id keeps the oldest; otherwise the venue returns the most recent.
    limit = min(params.integer(p, "limit") or 500, 1000)
    return items[:limit] if from_start else items[-limit:]
