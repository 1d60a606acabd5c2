"""Parse order and algo order parameters into requests; the venue's own errors for bad ones."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from egis_binance_local import errors, params
from egis_binance_local.model import CONDITIONAL_TYPES
from egis_binance_local.money import ZERO
from egis_binance_local.params import Params
from egis_binance_local.rules import check_client_id

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    client_order_id: str | None
    response_type: str


@dataclass(frozen=True)
class AlgoRequest:
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    trigger_price: Decimal
    close_position: bool
    reduce_only: bool
    working_type: str
    price_protect: bool
    time_in_force: str
    client_algo_id: str | None


def order_request(p: Params) -> OrderRequest:
    symbol = params.required(p, "symbol")
    side = params.choice(p, "side", SIDES, errors.invalid_side())
    order_type = params.choice(p, "type", ORDER_TYPES, errors.invalid_order_type())
    _check_one_way(p)
    quantity = params.required_decimal(p, "quantity")
    limit = order_type == "LIMIT"
    price = params.required_decimal(p, "price") if limit else ZERO
    tif = params.choice(p, "timeInForce", TIME_IN_FORCE, errors.invalid_time_in_force()) if limit else "GTC"
    client_id = params.text(p, "newClientOrderId")
    if client_id is not None:
        check_client_id(client_id, "newClientOrderId")
    return OrderRequest(
        symbol,
        side,
        order_type,
        quantity,
        price,
        tif,
        bool(params.boolean(p, "reduceOnly")),
        client_id,
        # Futures default is ACK: the answer says NEW even for a market order that filled.
        params.text(p, "newOrderRespType") or "ACK",
    )


def algo_request(p: Params) -> AlgoRequest:
    params.choice(p, "algoType", ("CONDITIONAL",), errors.BinanceError(-1116, "Invalid algoType."))
    symbol = params.required(p, "symbol")
    side = params.choice(p, "side", SIDES, errors.invalid_side())
    order_type = params.choice(p, "type", CONDITIONAL_TYPES, errors.invalid_order_type())
    _check_one_way(p)
    trigger = params.required_decimal(p, "triggerPrice")
    close_position = bool(params.boolean(p, "closePosition"))
    quantity, reduce_only = _algo_size(p, close_position)
    client_id = params.text(p, "clientAlgoId")
    if client_id is not None:
        check_client_id(client_id, "clientAlgoId")
    return AlgoRequest(
        symbol,
        side,
        order_type,
        quantity,
        trigger,
        close_position,
        reduce_only,
        params.text(p, "workingType") or "CONTRACT_PRICE",
        bool(params.boolean(p, "priceProtect")),
        params.text(p, "timeInForce") or "GTC",
        client_id,
    )


def _algo_size(p: Params, close_position: bool) -> tuple[Decimal, bool]:
    # Close-all takes its size from the position when it triggers: no quantity, no reduceOnly.
    if close_position:
        for name in ("quantity", "reduceOnly"):
            if params.text(p, name) is not None:
                raise errors.not_required(name)
        return ZERO, True
    return params.required_decimal(p, "quantity"), bool(params.boolean(p, "reduceOnly"))


def _check_one_way(p: Params) -> None:
    if (params.text(p, "positionSide") or "BOTH") != "BOTH":
        raise errors.position_side_mismatch()
