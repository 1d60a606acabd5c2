"""The user data stream: listen keys over REST, events over the websocket, drops and expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from binance.exceptions import BinanceAPIException

from egis_binance_local import BinanceLocal, local_async_client

API_KEY, API_SECRET = "test-key-alice", "test-secret-alice"  # the conftest's funded account
RECEIVE_TIMEOUT_S = 5


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def connect(session: aiohttp.ClientSession, server: BinanceLocal, listen_key: str, path: str = "/ws/"):
    return await session.ws_connect(f"{server.stream_url}{path}{listen_key}")


async def next_event(ws: aiohttp.ClientWebSocketResponse) -> dict:
    return await asyncio.wait_for(ws.receive_json(), RECEIVE_TIMEOUT_S)


async def connected(server: BinanceLocal, count: int = 1) -> None:
    # The server registers a socket just after the handshake answer: wait for it (bounded).
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        while server.user_streams() != count:
            await asyncio.sleep(0.01)


# --- listen keys -----------------------------------------------------------------------------


async def test_listen_key_requests_need_the_api_key_header_but_no_signature(server):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.fapi_url}/v1/listenKey") as answer:
            assert (answer.status, (await answer.json())["code"]) == (401, -2014)
        async with http.post(f"{server.fapi_url}/v1/listenKey", headers={"X-MBX-APIKEY": "nobody"}) as answer:
            assert (answer.status, (await answer.json())["code"]) == (401, -2015)
        async with http.post(f"{server.fapi_url}/v1/listenKey", headers={"X-MBX-APIKEY": API_KEY}) as answer:
            assert answer.status == 200 and len((await answer.json())["listenKey"]) == 64


async def test_a_closed_listen_key_cannot_be_kept_alive_and_a_new_one_differs(client):
    key = await client.futures_stream_get_listen_key()
    assert (await client.futures_stream_keepalive(key))["listenKey"] == key
    assert await client.futures_stream_close(key) == {}
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_stream_keepalive(key)
    assert refused.value.code == -1125
    assert await client.futures_stream_get_listen_key() != key


async def test_a_listen_key_expires_sixty_minutes_after_its_last_keepalive():
    now = [1_700_000_000_000]
    async with BinanceLocal(clock=lambda: now[0]) as server:
        server.add_account(API_KEY, API_SECRET)
        client = local_async_client(server.base_url, API_KEY, API_SECRET)
        try:
            key = await client.futures_stream_get_listen_key()
            now[0] += 59 * 60 * 1000
            assert (await client.futures_stream_keepalive(key))["listenKey"] == key
            now[0] += 59 * 60 * 1000
            assert (await client.futures_stream_keepalive(key))["listenKey"] == key  # extended by the PUT
            now[0] += 60 * 60 * 1000
            with pytest.raises(BinanceAPIException) as refused:
                await client.futures_stream_keepalive(key)
            assert refused.value.code == -1125
        finally:
            await client.close_connection()


# --- events ----------------------------------------------------------------------------------


async def test_a_market_order_pushes_new_then_its_trade(server, client, session):
    key = await client.futures_stream_get_listen_key()
    ws = await connect(session, server, key)
    await connected(server)
    placed = await client.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.002",
        newClientOrderId="open-1",
        newOrderRespType="RESULT",
    )
    new, trade = await next_event(ws), await next_event(ws)
    assert (new["e"], new["o"]["x"], new["o"]["X"], new["o"]["z"], new["o"]["t"]) == (
        "ORDER_TRADE_UPDATE",
        "NEW",
        "NEW",
        "0.000",
        0,
    )
    order = trade["o"]
    [venue_trade] = server.trades(API_KEY)
    assert (order["x"], order["X"], order["i"], order["c"], order["S"], order["o"], order["ot"]) == (
        "TRADE",
        "FILLED",
        placed["orderId"],
        "open-1",
        "BUY",
        "MARKET",
        "MARKET",
    )
    assert (order["l"], order["z"], order["L"], order["ap"], order["q"]) == (
        "0.002",
        "0.002",
        "60000.00",
        "60000.00000",
        "0.002",
    )
    assert (order["n"], order["N"], order["rp"], order["t"], order["m"], order["R"]) == (
        "0.06000000",
        "USDT",
        "0",
        venue_trade.trade_id,
        False,
        False,
    )
    assert Decimal(order["n"]) == Decimal("60000") * Decimal("0.002") * Decimal("0.0005")
    assert trade["T"] == order["T"] == venue_trade.time_ms
    await ws.close()


async def test_a_take_profit_pushes_its_algo_updates_and_the_spawned_order_with_realised_profit(
    server, client, session
):
    await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.003")
    key = await client.futures_stream_get_listen_key()
    ws = await connect(session, server, key, path="/private/ws/")
    await connected(server)
    await client.futures_create_algo_order(
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        triggerPrice="61000.00",
        closePosition="true",
        workingType="MARK_PRICE",
        clientAlgoId="tp-1",
    )
    placed = await next_event(ws)
    assert (placed["e"], placed["o"]["caid"], placed["o"]["X"], placed["o"]["o"], placed["o"]["tp"]) == (
        "ALGO_UPDATE",
        "tp-1",
        "NEW",
        "TAKE_PROFIT_MARKET",
        "61000.00",
    )
    assert (placed["o"]["ai"], placed["o"]["cp"], placed["o"]["wt"]) == ("", True, "MARK_PRICE")

    server.set_mark_price("BTCUSDT", "61000.50")
    triggered, new, trade, finished = [await next_event(ws) for _ in range(4)]
    [algo] = server.algo_orders(API_KEY)
    spawned_id = algo.actual_order_id
    assert (triggered["e"], triggered["o"]["X"], triggered["o"]["ai"], triggered["o"]["aid"]) == (
        "ALGO_UPDATE",
        "TRIGGERED",
        str(spawned_id),
        algo.algo_id,
    )
    assert (new["o"]["x"], new["o"]["i"], new["o"]["R"]) == ("NEW", spawned_id, True)
    order = trade["o"]
    assert (order["x"], order["X"], order["i"], order["S"], order["l"], order["L"]) == (
        "TRADE",
        "FILLED",
        spawned_id,
        "SELL",
        "0.003",
        "61000.50",
    )
    assert Decimal(order["rp"]) == (Decimal("61000.50") - Decimal("60000")) * Decimal("0.003")
    assert order["n"] == "0.09150075"  # 61000.50 * 0.003 * 0.0005, 8 decimals
    assert (finished["o"]["X"], finished["o"]["ai"], finished["o"]["aq"]) == ("FINISHED", str(spawned_id), "0.003")
    await ws.close()


async def test_every_socket_of_the_account_gets_the_event_and_another_account_nothing(server, client, session):
    server.add_account("other-key", "other-secret")
    other = local_async_client(server.base_url, "other-key", "other-secret")
    try:
        key, other_key = await client.futures_stream_get_listen_key(), await other.futures_stream_get_listen_key()
        first, second = (
            await connect(session, server, key),
            await connect(session, server, key, "/private/ws?listenKey="),
        )
        outsider = await connect(session, server, other_key)
        await connected(server, 3)
        await client.futures_create_order(
            symbol="ETHUSDT",
            side="SELL",
            type="LIMIT",
            quantity="0.010",
            price="3100.00",
            timeInForce="GTC",
            newClientOrderId="rest-1",
        )
        assert (await next_event(first))["o"]["c"] == (await next_event(second))["o"]["c"] == "rest-1"
        await client.futures_cancel_order(symbol="ETHUSDT", origClientOrderId="rest-1")
        canceled = await next_event(first)
        assert (canceled["o"]["x"], canceled["o"]["X"], canceled["o"]["p"]) == ("CANCELED", "CANCELED", "3100.00")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(outsider.receive_json(), 0.3)
    finally:
        await other.close_connection()


# --- drops, refusals, expiry -----------------------------------------------------------------


async def test_an_unknown_listen_key_is_refused(server, session):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(session, server, "not-a-listen-key")
    assert refused.value.status == 400


async def test_a_drop_cuts_the_socket_and_events_meanwhile_are_lost_to_it(server, client, session):
    key = await client.futures_stream_get_listen_key()
    ws = await connect(session, server, key)
    await connected(server)
    assert server.drop_user_streams() == 1
    message = await asyncio.wait_for(ws.receive(), RECEIVE_TIMEOUT_S)
    assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)

    server.user_streams_accepting = False
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(session, server, key)
    assert refused.value.status == 503
    await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")

    server.user_streams_accepting = True
    again = await connect(session, server, key)
    await connected(server)
    await client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002")
    first = await next_event(again)
    assert (first["o"]["x"], first["o"]["S"]) == ("NEW", "SELL")  # the BUY's events were never queued here
    await again.close()


async def test_an_expired_listen_key_says_so_and_closes_its_sockets(server, client, session):
    key = await client.futures_stream_get_listen_key()
    ws = await connect(session, server, key)
    await connected(server)
    server.expire_listen_key(API_KEY)
    event = await next_event(ws)
    assert (event["e"], event["listenKey"]) == ("listenKeyExpired", key)
    assert (await asyncio.wait_for(ws.receive(), RECEIVE_TIMEOUT_S)).type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
    )
    with pytest.raises(BinanceAPIException):
        await client.futures_stream_keepalive(key)


async def test_the_control_api_drops_refuses_and_expires(server, client, session):
    key = await client.futures_stream_get_listen_key()
    ws = await connect(session, server, key)
    await connected(server)
    async with session.get(f"{server.base_url}/_control/user_streams") as answer:
        assert await answer.json() == {"connected": 1, "accepting": True}
    async with session.post(f"{server.base_url}/_control/user_streams/drop", json={"apiKey": API_KEY}) as answer:
        assert await answer.json() == {"dropped": 1}
    assert (await asyncio.wait_for(ws.receive(), RECEIVE_TIMEOUT_S)).type is not aiohttp.WSMsgType.TEXT
    async with session.post(f"{server.base_url}/_control/user_streams/accepting", json={"accepting": False}) as a:
        assert await a.json() == {"connected": 0, "accepting": False}
    async with session.post(f"{server.base_url}/_control/user_streams/accepting", json={"accepting": "no"}) as a:
        assert a.status == 400
    async with session.post(f"{server.base_url}/_control/accounts/{API_KEY}/listen_key/expire") as answer:
        assert answer.status == 200
    with pytest.raises(BinanceAPIException):
        await client.futures_stream_keepalive(key)
