"""Conditional orders on the Algo Service: placement, triggering on the mark price, the spawned order."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from binance.exceptions import BinanceAPIException

TAKER = Decimal("0.0005")


def usdt(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)


async def open_long(client, quantity: str = "0.003") -> dict:
    return await client.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity=quantity,
        newClientOrderId="open-1",
        newOrderRespType="RESULT",
    )


async def test_a_take_profit_triggers_on_the_mark_and_its_order_carries_pnl_and_commission(server, client, api_key):
    await open_long(client)
    placed = await client.futures_create_order(
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        stopPrice="61234.50",
        closePosition=True,
        clientAlgoId="intent-7f3a-tp",
    )
    assert (placed["clientAlgoId"], placed["algoStatus"], placed["orderType"]) == (
        "intent-7f3a-tp",
        "NEW",
        "TAKE_PROFIT_MARKET",
    )
    server.set_mark_price("BTCUSDT", "61200.00")
    assert (await client.futures_get_order(symbol="BTCUSDT", clientAlgoId="intent-7f3a-tp"))["algoStatus"] == "NEW"

    server.set_mark_price("BTCUSDT", "61250.30")
    algo = await client.futures_get_algo_order(clientAlgoId="intent-7f3a-tp")
    assert algo["algoStatus"] == "FINISHED" and algo["triggerTime"] > 0
    spawned = await client.futures_get_order(symbol="BTCUSDT", orderId=int(algo["actualOrderId"]))
    assert (spawned["type"], spawned["side"], spawned["status"], spawned["reduceOnly"]) == (
        "MARKET",
        "SELL",
        "FILLED",
        True,
    )
    [trade] = await client.futures_account_trades(symbol="BTCUSDT", orderId=spawned["orderId"])
    exit_price, qty = Decimal("61250.30"), Decimal("0.003")
    assert Decimal(trade["price"]) == exit_price and Decimal(trade["qty"]) == qty
    assert Decimal(trade["realizedPnl"]) == usdt((exit_price - Decimal("60000")) * qty)
    assert Decimal(trade["commission"]) == usdt(exit_price * qty * TAKER)
    assert trade["commissionAsset"] == "USDT"
    assert server.position(api_key, "BTCUSDT").amount == 0
    assert await client.futures_get_open_orders(symbol="BTCUSDT", conditional=True) == []


async def test_a_reduce_only_stop_with_quantity_triggers_when_the_mark_falls(server, client, api_key):
    await open_long(client, "0.004")
    await client.futures_create_algo_order(
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        triggerPrice="58000",
        quantity="0.002",
        reduceOnly=True,
        clientAlgoId="sl-half",
    )
    server.set_mark_price("BTCUSDT", "62000")
    assert [a["clientAlgoId"] for a in await client.futures_get_open_algo_orders(symbol="BTCUSDT")] == ["sl-half"]
    server.set_mark_price("BTCUSDT", "57999.90")
    algo = await client.futures_get_algo_order(clientAlgoId="sl-half")
    assert algo["algoStatus"] == "FINISHED"
    [trade] = await client.futures_account_trades(symbol="BTCUSDT", orderId=int(algo["actualOrderId"]))
    assert Decimal(trade["realizedPnl"]) == (Decimal("57999.90") - 60000) * Decimal("0.002")
    assert server.position(api_key, "BTCUSDT").amount == Decimal("0.002")


async def test_a_trigger_already_crossed_is_refused_with_2021(client):
    with pytest.raises(BinanceAPIException) as refused:
        await client.futures_create_order(
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            stopPrice="60500",
            closePosition=True,
            clientAlgoId="sl-bad",
        )
    assert (refused.value.code, refused.value.message) == (-2021, "Order would immediately trigger.")


async def test_cancel_an_algo_order_and_the_errors_for_unknown_ones(client):
    await client.futures_create_order(
        symbol="BTCUSDT", side="SELL", type="STOP_MARKET", stopPrice="55000", closePosition=True, clientAlgoId="sl-1"
    )
    canceled = await client.futures_cancel_order(symbol="BTCUSDT", clientAlgoId="sl-1")
    assert (canceled["clientAlgoId"], canceled["code"], canceled["msg"]) == ("sl-1", "200", "success")
    assert (await client.futures_get_algo_order(clientAlgoId="sl-1"))["algoStatus"] == "CANCELED"
    with pytest.raises(BinanceAPIException) as again:
        await client.futures_cancel_algo_order(clientAlgoId="sl-1")
    assert again.value.code == -2011
    with pytest.raises(BinanceAPIException) as unknown:
        await client.futures_get_algo_order(algoId=42)
    assert unknown.value.code == -2013


async def test_a_close_position_stop_left_after_the_take_profit_is_rejected_when_it_triggers(server, client):
    await open_long(client)
    for kind, price, cid in (("TAKE_PROFIT_MARKET", "61000", "tp"), ("STOP_MARKET", "59000", "sl")):
        await client.futures_create_order(
            symbol="BTCUSDT", side="SELL", type=kind, stopPrice=price, closePosition=True, clientAlgoId=cid
        )
    server.set_mark_price("BTCUSDT", "61000")
    # The venue does not cancel the sibling: the stop stays NEW until it triggers on a flat position.
    assert [a["clientAlgoId"] for a in await client.futures_get_open_algo_orders()] == ["sl"]
    server.set_mark_price("BTCUSDT", "58000")
    stop = await client.futures_get_algo_order(clientAlgoId="sl")
    assert (stop["algoStatus"], stop["actualOrderId"]) == ("REJECTED", "")
    assert len(await client.futures_account_trades(symbol="BTCUSDT")) == 2


async def test_python_binance_invents_a_client_algo_id_when_none_is_given(client):
    placed = await client.futures_create_order(
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        stopPrice="55000",
        closePosition=True,
        newClientOrderId="ignored",
    )
    assert placed["clientAlgoId"].startswith("x-Cb7ytekJ")
