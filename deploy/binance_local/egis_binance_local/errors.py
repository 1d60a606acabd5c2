"""Binance error answers: HTTP status plus `{"code": <int>, "msg": "..."}`.

Codes and messages are the ones USDⓈ-M Futures returns, so client code that
branches on `BinanceAPIException.code` behaves here as it does in production.
"""

from __future__ import annotations


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def missing_api_key() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", 401)


def invalid_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def invalid_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def outside_recv_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def bad_recv_window() -> BinanceError:
    return BinanceError(-1131, "recvWindow must be less than 60000")


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def either_of(first: str, second: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def illegal_characters(name: str, legal: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_side() -> BinanceError:
    return BinanceError(-1117, "Invalid side.")


def invalid_order_type() -> BinanceError:
    return BinanceError(-1116, "Invalid orderType.")


def invalid_time_in_force() -> BinanceError:
    return BinanceError(-1115, "Invalid timeInForce.")


def precision_over_maximum() -> BinanceError:
    return BinanceError(-1111, "Precision is over the maximum defined for this asset.")


def quantity_not_positive() -> BinanceError:
    return BinanceError(-4003, "Quantity less than or equal to zero.")


def quantity_below_minimum() -> BinanceError:
    return BinanceError(-4004, "Quantity less than minimum quantity.")


def quantity_above_maximum() -> BinanceError:
    return BinanceError(-4005, "Quantity greater than maximum quantity.")


def quantity_off_step() -> BinanceError:
    return BinanceError(-4023, "Qty not increased by step size.")


def price_not_positive() -> BinanceError:
    return BinanceError(-4001, "Price less than 0.")


def price_off_tick() -> BinanceError:
    return BinanceError(-4014, "Price not increased by tick size.")


def notional_too_small(minimum: str) -> BinanceError:
    return BinanceError(-4164, f"Order's notional must be no smaller than {minimum} (unless you choose reduce only).")


def client_id_too_long() -> BinanceError:
    return BinanceError(-4015, "Client order id is not valid.")


def duplicate_client_id() -> BinanceError:
    return BinanceError(-4116, "ClientOrderId is duplicated.")


def position_side_mismatch() -> BinanceError:
    return BinanceError(-4061, "Order's position side does not match user's setting.")


def reduce_only_rejected() -> BinanceError:
    return BinanceError(-2022, "ReduceOnly Order is rejected.")


def margin_insufficient() -> BinanceError:
    return BinanceError(-2019, "Margin is insufficient.")


def would_immediately_trigger() -> BinanceError:
    return BinanceError(-2021, "Order would immediately trigger.")


def post_only_rejected() -> BinanceError:
    return BinanceError(-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def unknown_order() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def listen_key_does_not_exist() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


def invalid_leverage() -> BinanceError:
    return BinanceError(-4028, "Leverage is not valid.")


def too_many_requests(limit: int) -> BinanceError:
    return BinanceError(
        -1003,
        f"Too many requests; current limit of IP(127.0.0.1) request weight per minute is {limit}. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        429,
    )


def ip_banned(until_ms: int) -> BinanceError:
    return BinanceError(
        -1003,
        f"Way too many requests; IP(127.0.0.1) banned until {until_ms}. "
        "Please use the websocket for live updates to avoid bans.",
        418,
    )
