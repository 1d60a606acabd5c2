"""API key, signature and recvWindow checks, through the real python-binance client and by hand."""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp
import pytest
import yarl
from binance.exceptions import BinanceAPIException

from egis_binance_local import BinanceLocal


async def test_a_wrong_secret_is_refused_with_1022(server, make_client):
    client = make_client(api_secret="not-the-secret")
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_account()
    assert (refused.value.status_code, refused.value.code) == (400, -1022)
    assert refused.value.message == "Signature for this request is not valid."


async def test_an_unknown_api_key_is_refused_with_2015(server, make_client):
    client = make_client(api_key="nobody", api_secret="whatever")
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_position_information()
    assert (refused.value.status_code, refused.value.code) == (401, -2015)
    assert refused.value.message == "Invalid API-key, IP, or permissions for action."


async def test_a_stale_timestamp_is_refused_with_1021(server, client):
    client.timestamp_offset = -11_000  # python-binance sends recvWindow=10000
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_account()
    assert refused.value.code == -1021
    assert refused.value.message == "Timestamp for this request is outside of the recvWindow."


async def test_a_timestamp_more_than_a_second_ahead_is_refused_with_1021(server, client):
    client.timestamp_offset = 1_500
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_account()
    assert refused.value.code == -1021


async def test_market_data_needs_no_key(server, make_client):
    client = make_client(api_key=None, api_secret=None)
    assert await client.futures_ping() == {}
    assert (await client.futures_time())["serverTime"] > 0


async def test_a_client_order_id_with_a_colon_breaks_python_binance_signatures(server, client):
    # python-binance signs "newClientOrderId=a:b" but aiohttp form-encodes the body as
    # "a%3Ab"; the venue verifies the raw body, so the request is refused. Ids sent
    # through python-binance POST/DELETE must stay within [A-Za-z0-9._-].
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_create_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId="bot:1"
        )
    assert refused.value.code == -1022
    assert server.orders("test-key-alice") == []


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


async def _raw(server: BinanceLocal, method: str, query: str, body: str = "", key: str = "test-key-alice"):
    url = f"{server.base_url}/fapi/v1/order?{query}"
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, yarl.URL(url, encoded=True), data=body, headers=headers) as r:
            return r.status, await r.json()


async def test_the_signature_covers_the_query_string_followed_by_the_body(server):
    query = f"symbol=BTCUSDT&side=BUY&type=MARKET&timestamp={int(time.time() * 1000)}"
    body = "quantity=0.002&newClientOrderId=raw-1"
    signed = f"{query}&signature={_sign('test-secret-alice', query + body)}"
    status, answer = await _raw(server, "POST", signed, body)
    assert status == 200, answer
    assert answer["clientOrderId"] == "raw-1"


async def test_the_signature_is_checked_against_the_raw_string_not_a_re_encoding(server):
    # The same parameters, percent-encoded differently from what was signed.
    stamp = int(time.time() * 1000)
    signed_text = f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.002&newClientOrderId=a.b&timestamp={stamp}"
    sent_text = signed_text.replace("a.b", "a%2Eb")
    status, answer = await _raw(server, "POST", f"{sent_text}&signature={_sign('test-secret-alice', signed_text)}")
    assert (status, answer["code"]) == (400, -1022)


async def test_a_recv_window_above_sixty_seconds_is_refused(server):
    query = f"symbol=BTCUSDT&orderId=1&recvWindow=60001&timestamp={int(time.time() * 1000)}"
    status, answer = await _raw(server, "GET", f"{query}&signature={_sign('test-secret-alice', query)}")
    assert (status, answer["code"]) == (400, -1131)


async def test_each_key_is_its_own_account(server, make_client):
    server.add_account("test-key-bob", "test-secret-bob", usdt="500")
    alice, bob = make_client(), make_client("test-key-bob", "test-secret-bob")
    await alice.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId="alice-1"
    )
    assert await bob.futures_account_trades(symbol="BTCUSDT") == []
    assert (await bob.futures_account_balance())[0]["balance"] == "500.00000000"
    with pytest.raises(BinanceAPIException) as missing:
        await bob.futures_get_order(symbol="BTCUSDT", origClientOrderId="alice-1")
    assert missing.value.code == -2013
