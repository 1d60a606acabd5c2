"""Every python-binance futures method this server supports answers, through the real client."""

from __future__ import annotations

from decimal import Decimal


async def test_list_and_bulk_cancel_methods(server, client):
    await client.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="50000",
        newClientOrderId="rest-a",
    )
    await client.futures_create_order(
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        stopPrice="40000",
        quantity="0.002",
        reduceOnly=True,
        clientAlgoId="sl-a",
    )
    assert [o["clientOrderId"] for o in await client.futures_get_all_orders(symbol="BTCUSDT")] == ["rest-a"]
    assert [a["clientAlgoId"] for a in await client.futures_get_all_orders(symbol="BTCUSDT", conditional=True)] == [
        "sl-a"
    ]
    assert (await client.futures_cancel_all_open_orders(symbol="BTCUSDT"))["code"] == 200
    assert (await client.futures_cancel_all_open_orders(symbol="BTCUSDT", conditional=True))["code"] == 200
    assert await client.futures_get_open_orders() == []
    assert await client.futures_get_open_orders(conditional=True) == []
    assert (await client.futures_get_all_algo_orders(symbol="BTCUSDT"))[0]["algoStatus"] == "CANCELED"


async def test_market_data_and_account_settings(server, client):
    server.set_mark_price("ETHUSDT", "3100.25")
    assert (await client.futures_mark_price(symbol="ETHUSDT"))["markPrice"] == "3100.25000000"
    assert (await client.futures_symbol_ticker(symbol="ETHUSDT"))["price"] == "3100.25"
    assert len(await client.futures_symbol_ticker()) == len(server.venue.exchange.specs)
    changed = await client.futures_change_leverage(symbol="ETHUSDT", leverage=5)
    assert (changed["symbol"], changed["leverage"]) == ("ETHUSDT", 5)
    assert await client.futures_get_position_mode() == {"dualSidePosition": False}
    rates = await client.futures_commission_rate(symbol="ETHUSDT")
    assert (rates["makerCommissionRate"], rates["takerCommissionRate"]) == ("0.0002", "0.0005")


async def test_leverage_sets_the_margin_an_order_needs(server, make_client):
    server.add_account("test-key-small", "test-secret-small", usdt="100")
    small = make_client("test-key-small", "test-secret-small")
    await small.futures_change_leverage(symbol="BTCUSDT", leverage=2)
    await small.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.003")  # needs 90
    [entry] = await small.futures_position_information(symbol="BTCUSDT")
    assert Decimal(entry["initialMargin"]) == Decimal("90")


async def test_account_versions_and_listen_key(client):
    await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    assert len((await client.futures_account(version=3))["positions"]) == 1
    assert len((await client.futures_account())["positions"]) == 4  # v2 lists every symbol
    assert len(await client.futures_position_information(version=2)) == 4
    key = await client.futures_stream_get_listen_key()
    assert await client.futures_stream_get_listen_key() == key  # the same key while it is valid
    assert (await client.futures_stream_keepalive(key))["listenKey"] == key
    assert await client.futures_stream_close(key) == {}
