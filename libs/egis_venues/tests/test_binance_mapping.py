"""The Binance adapter's pure parts: error mapping, order statuses, wire values, client wiring."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import aiohttp
import pytest
from binance.exceptions import BinanceAPIException, BinanceRequestException

from egis_venues.binance.client import client_factory
from egis_venues.binance.errors import (
    CONFIG_ERROR_CODES,
    REFUSED_CODES,
    lookup_failure,
    placement_failure,
)
from egis_venues.binance.parse import unexecuted_outcome, venue_decimal, venue_order
from egis_venues.binance.requests import invalid_market_order, market_order_params, stop_params
from egis_venues.port import MarketOrder, NotFound, OrderSide, Rejected, StopOrder, SymbolRules, Unknown
from egis_venues.settings import BinanceCredentials


def api_error(code: int, status: int = 400, msg: str = "venue says no") -> BinanceAPIException:
    response = SimpleNamespace(headers={})
    return BinanceAPIException(response, status, json.dumps({"code": code, "msg": msg}))


def placed(error: Exception) -> Rejected | Unknown:
    return placement_failure(error, account="main", client_id="ego-test")


@pytest.mark.parametrize("code", sorted(REFUSED_CODES) + sorted(CONFIG_ERROR_CODES))
def test_codes_proving_nothing_was_placed_are_rejections(code):
    assert placed(api_error(code)) == Rejected(
        str(code), "venue says no", {"status": 400, "code": code, "msg": "venue says no"}
    )


@pytest.mark.parametrize("code", [-4116, -1000, -1001, -1003, -1007, -1008, -9999])
def test_codes_that_do_not_prove_it_are_unknown(code):
    assert isinstance(placed(api_error(code)), Unknown)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_any_5xx_is_unknown_whatever_its_code(status):
    assert isinstance(placed(api_error(-2019, status)), Unknown)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError("read"), "timeout"),
        (aiohttp.ServerDisconnectedError(), "connection"),
        (aiohttp.ClientConnectionError("reset"), "connection"),
        (BinanceRequestException("Invalid Response: <html>"), "unreadable_response"),
        (KeyError("orderId"), "unexpected_KeyError"),
    ],
)
def test_infrastructure_failures_are_unknown(error, cause):
    assert placed(error).cause == cause


def test_a_lookup_finds_nothing_only_on_order_does_not_exist():
    assert lookup_failure(api_error(-2013)) == NotFound()
    assert isinstance(lookup_failure(api_error(-1022)), Unknown)
    assert isinstance(lookup_failure(TimeoutError()), Unknown)


def order_body(status: str, executed: str) -> dict[str, object]:
    return {
        "orderId": 7,
        "clientOrderId": "ego-x",
        "status": status,
        "executedQty": executed,
        "avgPrice": "0.00",
        "cumQuote": "0",
        "updateTime": 1700000000000,
    }


@pytest.mark.parametrize(
    ("status", "executed", "expected"),
    [
        ("NEW", "0", Unknown),
        ("EXPIRED", "0", Rejected),
        ("CANCELED", "0", Rejected),
        ("EXPIRED", "0.001", None),
        ("PARTIALLY_FILLED", "0.001", None),
        ("FILLED", "0.002", None),
    ],
)
def test_order_statuses(status, executed, expected):
    outcome = unexecuted_outcome(venue_order(order_body(status, executed)))
    assert outcome is None if expected is None else isinstance(outcome, expected)


def test_venue_numbers_become_decimals_through_their_text():
    assert venue_decimal(0.1) == Decimal("0.1") and venue_decimal(1e-05) == Decimal("0.00001")
    assert venue_decimal("36567.10") == Decimal("36567.10") and venue_decimal(3) == 3
    for bad in (True, "1e3", "NaN", float("inf")):
        with pytest.raises(ValueError):
            venue_decimal(bad)


def test_market_order_params_are_plain_strings():
    order = MarketOrder("main", "BTCUSDT", OrderSide.SELL, Decimal("1E+1"), "ego-abc", True)
    params = market_order_params(order)
    assert (params["quantity"], params["reduceOnly"], params["newClientOrderId"]) == ("10", "true", "ego-abc")
    zero = MarketOrder("main", "BTCUSDT", OrderSide.BUY, Decimal("0"), "ego-abc", False)
    assert isinstance(invalid_market_order(zero), Rejected)


def test_stop_params_put_the_trigger_on_the_tick_and_close_the_position():
    rules = SymbolRules("BTCUSDT", Decimal("0.001"), Decimal("0.10"), Decimal("0.001"), Decimal("100"))
    stop = StopOrder("main", "BTCUSDT", OrderSide.SELL, "STOP_MARKET", Decimal("58123.456"), "egs-abc")
    params = stop_params(stop, rules)
    assert (params["triggerPrice"], params["closePosition"], params["clientAlgoId"]) == ("58123.40", "true", "egs-abc")
    assert "quantity" not in params and "reduceOnly" not in params


@pytest.mark.parametrize(
    ("live", "base_url", "expected"),
    [
        (False, None, "https://testnet.binancefuture.com/fapi/v1/ping"),
        (True, None, "https://fapi.binance.com/fapi/v1/ping"),
        (True, "http://127.0.0.1:9", "http://127.0.0.1:9/fapi/v1/ping"),
    ],
)
async def test_testnet_unless_live_and_a_base_url_overrides_both(live, base_url, expected):
    make = client_factory(live=live, base_url=base_url, request_timeout_s=5)
    client = make(BinanceCredentials(api_key="k", api_secret="s"))
    try:
        assert client._create_futures_api_uri("ping") == expected
        assert client._requests_params["timeout"].total == 5
    finally:
        await client.close_connection()
