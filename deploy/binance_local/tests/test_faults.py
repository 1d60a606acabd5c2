"""Injected faults and the request log, as python-binance experiences them."""

from __future__ import annotations

import aiohttp
import pytest
from binance.exceptions import BinanceAPIException

ORDER = "/fapi/v1/order"


async def market_buy(client, client_id: str) -> dict:
    return await client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId=client_id
    )


async def test_accept_then_timeout_places_exactly_one_order_the_client_never_hears_of(server, make_client, api_key):
    client = make_client(requests_params={"timeout": 0.3})
    server.inject_fault("accept_then_timeout", method="POST", path=ORDER)
    with pytest.raises(TimeoutError):
        await market_buy(client, "intent-9-open")
    [order] = server.orders(api_key)
    assert (order.client_order_id, order.status) == ("intent-9-open", "FILLED")
    assert [(r.method, r.fault) for r in server.requests(path=ORDER)] == [("POST", "accept_then_timeout")]
    # The caller resolves the unknown outcome by looking the order up, and places nothing new.
    found = await client.futures_get_order(symbol="BTCUSDT", origClientOrderId="intent-9-open")
    assert found["orderId"] == order.order_id
    assert len(server.requests(method="POST", path=ORDER)) == 1


async def test_accept_then_drop_places_the_order_and_resets_the_connection(server, client, api_key):
    server.inject_fault("accept_then_drop", method="POST", path=ORDER)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await market_buy(client, "intent-10-open")
    assert [o.client_order_id for o in server.orders(api_key)] == ["intent-10-open"]


async def test_a_dropped_cancel_is_retried_by_aiohttp_and_answers_unknown_order(server, client, api_key):
    # aiohttp resends an idempotent method (DELETE) once when a kept-alive connection
    # drops: the first cancel worked, the resent one finds nothing open any more.
    placed = await client.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="50000",
        newClientOrderId="rest-1",
    )
    server.inject_fault("accept_then_drop", method="DELETE", path=ORDER)
    with pytest.raises(BinanceAPIException) as answer:
        await client.futures_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
    assert answer.value.code == -2011
    assert server.orders(api_key)[0].status == "CANCELED"
    assert [r.status for r in server.requests(method="DELETE")] == [200, 400]


@pytest.mark.parametrize(("kind", "status", "code"), [("http_500", 500, -1000), ("http_503", 503, -1001)])
async def test_server_errors_place_nothing(server, client, api_key, kind, status, code):
    server.inject_fault(kind, method="POST", path=ORDER)
    with pytest.raises(BinanceAPIException) as error:
        await market_buy(client, "intent-11-open")
    assert (error.value.status_code, error.value.code) == (status, code)
    assert server.orders(api_key) == []
    await market_buy(client, "intent-11-open")  # the fault was for one request only
    assert len(server.orders(api_key)) == 1


async def test_reject_answers_the_given_code_and_places_nothing(server, client, api_key):
    server.inject_fault(
        "reject",
        path=ORDER,
        code=-4131,
        msg="The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
    )
    with pytest.raises(BinanceAPIException) as error:
        await market_buy(client, "intent-12-open")
    assert (error.value.status_code, error.value.code) == (400, -4131)
    assert "PERCENT_PRICE" in error.value.message
    assert server.orders(api_key) == []


@pytest.mark.parametrize(("kind", "status"), [("http_429", 429), ("http_418", 418)])
async def test_rate_limit_faults_carry_retry_after(server, client, kind, status):
    server.inject_fault(kind, count=2, retry_after_s=7)
    for _ in range(2):
        with pytest.raises(BinanceAPIException) as error:
            await client.futures_account()
        assert (error.value.status_code, error.value.code) == (status, -1003)
        assert error.value.response.headers["Retry-After"] == "7"
    assert "totalWalletBalance" in await client.futures_account()


async def test_a_fault_only_hits_matching_requests(server, client):
    server.inject_fault("http_503", method="POST", path=ORDER)
    await client.futures_get_open_orders(symbol="BTCUSDT")
    await client.futures_position_information()
    assert [r.fault for r in server.requests()] == [None, None]
    assert server.venue.faults.faults[0].remaining == 1


async def test_the_request_log_shows_that_no_call_was_made(server, client):
    assert server.requests() == []
    await client.futures_account_trades(symbol="BTCUSDT", limit=10)
    [record] = server.requests()
    assert (record.method, record.path, record.weight, record.status) == ("GET", "/fapi/v1/userTrades", 5, 200)
    assert record.params["symbol"] == "BTCUSDT" and "signature" not in record.params
    server.clear_requests()
    assert server.requests() == []


async def test_an_endpoint_this_server_lacks_is_logged_and_answered_404(server, client):
    with pytest.raises(BinanceAPIException) as missing:
        await client.futures_income_history(symbol="BTCUSDT")
    assert (missing.value.status_code, missing.value.code) == (404, -1000)
    assert [(r.method, r.path, r.status) for r in server.requests()] == [("GET", "/fapi/v1/income", 404)]
