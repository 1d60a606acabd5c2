"""The /_control HTTP API does what the Python methods do, for out-of-process demos and tests."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from binance.exceptions import BinanceAPIException


@pytest.fixture
async def control(server):
    async with aiohttp.ClientSession(base_url=server.base_url) as session:
        yield session


async def call(session: aiohttp.ClientSession, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    async with session.request(method, path, json=body) as response:
        return response.status, await response.json()


async def test_create_and_fund_an_account_then_trade_with_it(server, control, make_client):
    status, created = await call(
        control, "POST", "/_control/accounts", {"apiKey": "demo-key", "apiSecret": "demo-secret", "usdt": "250"}
    )
    assert (status, created["walletUsdt"]) == (200, "250")
    status, funded = await call(control, "POST", "/_control/accounts/demo-key/fund", {"amount": "50.5"})
    assert funded["walletUsdt"] == "300.5"
    demo = make_client("demo-key", "demo-secret")
    await demo.futures_create_order(symbol="SOLUSDT", side="BUY", type="MARKET", quantity="1.00")
    _, shown = await call(control, "GET", "/_control/accounts/demo-key")
    assert shown["positions"] == {"SOLUSDT": {"amount": "1", "entryPrice": "150"}}


async def test_mark_price_over_http_triggers_algo_orders(server, control, client):
    await client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.010")
    await client.futures_create_order(
        symbol="ETHUSDT", side="SELL", type="STOP_MARKET", stopPrice="2900", closePosition=True, clientAlgoId="eth-sl"
    )
    status, answer = await call(control, "POST", "/_control/mark_price", {"symbol": "ETHUSDT", "price": "2899.99"})
    assert (status, answer["markPrice"]) == (200, "2899.99")
    assert (await client.futures_get_algo_order(clientAlgoId="eth-sl"))["algoStatus"] == "FINISHED"
    _, marks = await call(control, "GET", "/_control/mark_price")
    assert marks["ETHUSDT"] == "2899.99"


async def test_faults_and_the_request_log_over_http(server, control, client):
    status, fault = await call(
        control, "POST", "/_control/faults", {"kind": "reject", "path": "/fapi/v1/order", "code": -2010, "msg": "nope"}
    )
    assert (status, fault["kind"], fault["remaining"]) == (200, "reject", 1)
    with pytest.raises(BinanceAPIException) as rejected:
        await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    assert rejected.value.code == -2010
    _, log = await call(control, "GET", "/_control/requests?method=POST&path=/fapi/v1/order")
    assert [(r["status"], r["fault"], r["weight"]) for r in log] == [(400, "reject", 0)]
    await call(control, "DELETE", "/_control/requests")
    assert (await call(control, "GET", "/_control/requests"))[1] == []


async def test_amounts_must_be_decimal_strings(server, control):
    status, answer = await call(control, "POST", "/_control/mark_price", {"symbol": "BTCUSDT", "price": 61000.5})
    assert status == 400 and "decimal strings" in answer["error"]
    assert server.mark_price("BTCUSDT") == Decimal("60000.00")


async def test_weight_limit_over_http(server, control, client):
    status, answer = await call(control, "POST", "/_control/weight_limit", {"limit": 1})
    assert (status, answer["limit"]) == (200, 1)
    await client.futures_ping()
    with pytest.raises(BinanceAPIException) as limited:
        await client.futures_ping()
    assert limited.value.status_code == 429
