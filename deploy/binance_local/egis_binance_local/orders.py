"""Regular orders (MARKET, LIMIT): place, fill, cancel, look up.

A MARKET order fills at once at the taker price; a LIMIT order that crosses
the mark fills at once too, otherwise it rests until the mark reaches it and
then fills at its limit price as maker.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from egis_binance_local import errors
from egis_binance_local.intake import OrderRequest
from egis_binance_local.model import Account, Order
from egis_binance_local.positions import closing_qty
from egis_binance_local.rules import check_notional, check_price, check_quantity

if TYPE_CHECKING:
    from egis_binance_local.exchange import Exchange


@dataclass(frozen=True)
class Placement:
    accepted: Order  # the order as it was when accepted: what an ACK answer shows
    final: Order  # the order after any immediate fill: what a RESULT answer shows


def place(exchange: Exchange, account: Account, request: OrderRequest) -> Placement:
    _validate(exchange, account, request)
    order = _new_order(exchange, account, request)
    account.orders[order.order_id] = order
    accepted = dataclasses.replace(order)
    exchange.announce_order(account, order, "NEW")
    _match_on_entry(exchange, account, order)
    return Placement(accepted, order)


def _validate(exchange: Exchange, account: Account, request: OrderRequest) -> None:
    spec = exchange.spec(request.symbol)
    market = request.type == "MARKET"
    check_quantity(spec, request.quantity, market=market)
    if not market:
        check_price(spec, request.price)
    reference = exchange.marks[spec.symbol] if market else request.price
    check_notional(spec, request.quantity, reference, reduce_only=request.reduce_only)
    if request.client_order_id and any(o.client_order_id == request.client_order_id for o in account.open_orders()):
        raise errors.duplicate_client_id()
    amount = account.position(spec.symbol).amount
    if request.reduce_only and closing_qty(amount, request.side, request.quantity) != request.quantity:
        raise errors.reduce_only_rejected()
    post_only = not market and request.time_in_force == "GTX"
    if post_only and _crosses(request.side, request.price, exchange.marks[spec.symbol]):
        raise errors.post_only_rejected()
    exchange.check_margin(account, spec.symbol, request.side, request.quantity, reference)


def _new_order(exchange: Exchange, account: Account, request: OrderRequest) -> Order:
    now = exchange.clock()
    return Order(
        exchange.next_order_id(),
        request.client_order_id or _random_client_id(),
        request.symbol,
        request.side,
        request.type,
        request.type,
        request.quantity,
        request.price,
        request.time_in_force,
        request.reduce_only,
        False,
        now,
        update_ms=now,
    )


def _match_on_entry(exchange: Exchange, account: Account, order: Order) -> None:
    taker_price = exchange.taker_price(order.symbol, order.side)
    if order.type == "MARKET":
        exchange.fill(account, order, taker_price, maker=False)
    elif _crosses(order.side, order.price, exchange.marks[order.symbol]):
        better = min(order.price, taker_price) if order.side == "BUY" else max(order.price, taker_price)
        exchange.fill(account, order, better, maker=False)
    elif order.time_in_force in ("IOC", "FOK"):
        order.status = "EXPIRED"
        exchange.announce_order(account, order, "EXPIRED")


def _crosses(side: str, limit: Decimal, mark: Decimal) -> bool:
    return mark <= limit if side == "BUY" else mark >= limit


def on_mark_price(exchange: Exchange, account: Account, symbol: str, mark: Decimal) -> None:
    for order in account.open_orders(symbol):
        if not _crosses(order.side, order.price, mark):
            continue
        amount = account.position(symbol).amount
        # A resting reduce-only order must not open or flip a position that changed meanwhile.
        if order.reduce_only and closing_qty(amount, order.side, order.remaining_qty) != order.remaining_qty:
            order.status, order.update_ms = "EXPIRED", exchange.clock()
            exchange.announce_order(account, order, "EXPIRED")
            continue
        exchange.fill(account, order, order.price, maker=True)


def find(account: Account, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
    if order_id is not None:
        order = account.orders.get(order_id)
        return order if order is not None and order.symbol == symbol else None
    # Client ids are unique only among open orders: the latest one with this id wins.
    matching = [o for o in account.orders.values() if o.symbol == symbol and o.client_order_id == client_id]
    return matching[-1] if matching else None


def cancel(exchange: Exchange, account: Account, symbol: str, order_id: int | None, client_id: str | None) -> Order:
    order = find(account, symbol, order_id, client_id)
    if order is None or not order.is_open:
        raise errors.unknown_order()
    order.status, order.update_ms = "CANCELED", exchange.clock()
    exchange.announce_order(account, order, "CANCELED")
    return order


def _random_client_id() -> str:
    return "web_" + secrets.token_hex(10)
