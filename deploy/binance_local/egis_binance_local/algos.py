"""Conditional algo orders (STOP_MARKET, TAKE_PROFIT_MARKET) on the venue's Algo Service.

They wait outside the order book. When the mark price crosses the trigger,
the algo order spawns a regular MARKET order (reduce-only when it was placed
reduce-only or close-position), records its id as `actualOrderId`, and ends
FINISHED once that order filled, or REJECTED when there was nothing it was
allowed to do (no position left to reduce, no margin).
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import TYPE_CHECKING

from egis_binance_local import errors
from egis_binance_local.intake import AlgoRequest
from egis_binance_local.model import Account, AlgoOrder, Order
from egis_binance_local.money import ZERO
from egis_binance_local.positions import closing_qty
from egis_binance_local.rules import check_notional, check_price, check_quantity

if TYPE_CHECKING:
    from egis_binance_local.exchange import Exchange


def place(exchange: Exchange, account: Account, request: AlgoRequest) -> AlgoOrder:
    spec = exchange.spec(request.symbol)
    check_price(spec, request.trigger_price)
    if not request.close_position:
        check_quantity(spec, request.quantity, market=True)
        check_notional(spec, request.quantity, request.trigger_price, reduce_only=request.reduce_only)
    if request.client_algo_id and any(a.client_algo_id == request.client_algo_id for a in account.open_algo_orders()):
        raise errors.duplicate_client_id()
    if is_triggered(request.order_type, request.side, request.trigger_price, exchange.marks[spec.symbol]):
        raise errors.would_immediately_trigger()
    algo = _new_algo(exchange, request)
    account.algo_orders[algo.algo_id] = algo
    exchange.announce_algo(account, algo)
    return algo


def _new_algo(exchange: Exchange, request: AlgoRequest) -> AlgoOrder:
    now = exchange.clock()
    return AlgoOrder(
        exchange.next_algo_id(),
        request.client_algo_id or secrets.token_urlsafe(16)[:22],
        request.symbol,
        request.side,
        request.order_type,
        request.quantity,
        request.trigger_price,
        request.close_position,
        request.reduce_only,
        request.working_type,
        request.price_protect,
        request.time_in_force,
        now,
        update_ms=now,
    )


def is_triggered(order_type: str, side: str, trigger: Decimal, mark: Decimal) -> bool:
    # A stop buys into strength and sells into weakness; a take-profit does the opposite.
    rising_trigger = (order_type == "STOP_MARKET") == (side == "BUY")
    return mark >= trigger if rising_trigger else mark <= trigger


def on_mark_price(exchange: Exchange, account: Account, symbol: str, mark: Decimal) -> None:
    for algo in account.open_algo_orders(symbol):
        if is_triggered(algo.order_type, algo.side, algo.trigger_price, mark):
            _trigger(exchange, account, algo)


def _trigger(exchange: Exchange, account: Account, algo: AlgoOrder) -> None:
    algo.status = "TRIGGERED"
    algo.trigger_ms = algo.update_ms = exchange.clock()
    qty = _spawn_qty(account, algo)
    if qty == ZERO or not _margin_ok(exchange, account, algo, qty):
        algo.status = "REJECTED"
        exchange.announce_algo(account, algo)
        return
    order = _spawned_order(exchange, algo, qty)
    account.orders[order.order_id] = order
    algo.actual_order_id = order.order_id
    exchange.announce_algo(account, algo)  # TRIGGERED, naming the order it spawned
    exchange.announce_order(account, order, "NEW")
    exchange.fill(account, order, exchange.taker_price(algo.symbol, algo.side), maker=False)
    algo.status, algo.update_ms = "FINISHED", exchange.clock()
    exchange.announce_algo(account, algo)


def _spawn_qty(account: Account, algo: AlgoOrder) -> Decimal:
    """Close-position takes the whole position; reduce-only never more than it."""
    amount = account.position(algo.symbol).amount
    if algo.close_position:
        return closing_qty(amount, algo.side, abs(amount))
    if algo.reduce_only:
        return closing_qty(amount, algo.side, algo.quantity)
    return algo.quantity


def _margin_ok(exchange: Exchange, account: Account, algo: AlgoOrder, qty: Decimal) -> bool:
    if algo.reduce_only or algo.close_position:
        return True
    try:
        exchange.check_margin(account, algo.symbol, algo.side, qty, exchange.marks[algo.symbol])
    except errors.BinanceError:
        return False
    return True


def _spawned_order(exchange: Exchange, algo: AlgoOrder, qty: Decimal) -> Order:
    now = exchange.clock()
    return Order(
        exchange.next_order_id(),
        f"algo{algo.algo_id}",
        algo.symbol,
        algo.side,
        "MARKET",
        "MARKET",
        qty,
        ZERO,
        "GTC",
        algo.reduce_only or algo.close_position,
        algo.close_position,
        now,
        update_ms=now,
    )


def find(account: Account, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder | None:
    if algo_id is not None:
        return account.algo_orders.get(algo_id)
    matching = [a for a in account.algo_orders.values() if a.client_algo_id == client_algo_id]
    return matching[-1] if matching else None


def cancel(exchange: Exchange, account: Account, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
    algo = find(account, algo_id, client_algo_id)
    if algo is None or not algo.is_open:
        raise errors.unknown_order()
    algo.status, algo.update_ms = "CANCELED", exchange.clock()
    exchange.announce_algo(account, algo)
    return algo
