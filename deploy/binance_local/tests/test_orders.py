"""Regular orders through python-binance: fills, filters and their error codes, lookups, positions."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest
from binance.exceptions import BinanceAPIException

TAKER = Decimal("0.0005")
MAKER = Decimal("0.0002")
EIGHT = Decimal("0.00000001")


def floor_to_step(quantity: Decimal, step: Decimal) -> Decimal:
    """What a caller does before sending: round the wanted size down to the step size."""
    return (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step


async def step_size(client, symbol: str) -> Decimal:
    info = await client.futures_exchange_info()
    filters = next(s["filters"] for s in info["symbols"] if s["symbol"] == symbol)
    return Decimal(next(f["stepSize"] for f in filters if f["filterType"] == "LOT_SIZE"))


async def refused(call, **params) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as error:
        await call(**params)
    return error.value


async def test_a_market_order_with_result_fills_the_step_rounded_quantity(server, client, api_key):
    wanted = Decimal("150") / Decimal("60000")  # $150 of BTC: 0.0025
    quantity = floor_to_step(wanted, await step_size(client, "BTCUSDT"))
    answer = await client.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity=str(quantity),
        newClientOrderId="intent-7f3a-open",
        newOrderRespType="RESULT",
    )
    assert (answer["status"], answer["clientOrderId"]) == ("FILLED", "intent-7f3a-open")
    assert (answer["origQty"], answer["executedQty"], answer["cumQty"]) == ("0.002", "0.002", "0.002")
    assert Decimal(answer["avgPrice"]) == Decimal("60000")
    assert Decimal(answer["cumQuote"]) == Decimal("120")
    found = await client.futures_get_order(symbol="BTCUSDT", origClientOrderId="intent-7f3a-open")
    assert (found["orderId"], found["status"], found["executedQty"]) == (answer["orderId"], "FILLED", "0.002")
    assert server.position(api_key, "BTCUSDT").amount == Decimal("0.002")


async def test_the_default_ack_answer_says_new_even_though_the_market_order_filled(client):
    answer = await client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId="ack-1"
    )
    assert (answer["status"], answer["executedQty"]) == ("NEW", "0.000")
    found = await client.futures_get_order(symbol="BTCUSDT", orderId=answer["orderId"])
    assert found["status"] == "FILLED"


async def test_a_ten_dollar_order_fills_on_a_symbol_with_minimum_notional_five(client):
    quantity = floor_to_step(Decimal("10") / Decimal("150"), await step_size(client, "SOLUSDT"))
    answer = await client.futures_create_order(
        symbol="SOLUSDT", side="BUY", type="MARKET", quantity=str(quantity), newOrderRespType="RESULT"
    )
    assert (answer["status"], answer["executedQty"]) == ("FILLED", "0.06")


async def test_below_minimum_notional_is_refused_with_4164(server, client, api_key):
    error = await refused(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert error.code == -4164
    assert error.message == "Order's notional must be no smaller than 100 (unless you choose reduce only)."
    assert server.orders(api_key) == []


@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        ("0.0015", -1111),  # finer than the step's precision
        ("0", -4003),
        ("121", -4005),  # MARKET_LOT_SIZE caps market orders at 120 BTC
        ("1e-3", -1100),  # exponent notation is not a decimal the venue accepts
    ],
)
async def test_quantity_filters(client, quantity, code):
    error = await refused(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=quantity)
    assert error.code == code


async def test_a_price_off_the_tick_is_refused_with_4014(client):
    error = await refused(
        client.futures_create_order,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="59000.05",
    )
    assert (error.code, error.message) == (-4014, "Price not increased by tick size.")


async def test_unknown_symbol_and_missing_parameters(client):
    assert (
        await refused(client.futures_create_order, symbol="NOPEUSDT", side="BUY", type="MARKET", quantity="1")
    ).code == -1121
    missing = await refused(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET")
    assert (missing.code, missing.message) == (
        -1102,
        "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    )


async def test_a_client_order_id_is_unique_among_open_orders_only(client):
    params = dict(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="50000",
        newClientOrderId="resting-1",
    )
    first = await client.futures_create_order(**params)
    duplicate = await refused(client.futures_create_order, **params)
    assert (duplicate.code, duplicate.message) == (-4116, "ClientOrderId is duplicated.")
    await client.futures_cancel_order(symbol="BTCUSDT", orderId=first["orderId"])
    again = await client.futures_create_order(**params)
    assert again["orderId"] != first["orderId"]


async def test_reduce_only_closes_a_long_and_never_opens_a_short(server, client, api_key):
    await client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.010")
    too_much = await refused(
        client.futures_create_order, symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.011", reduceOnly=True
    )
    assert (too_much.code, too_much.message) == (-2022, "ReduceOnly Order is rejected.")
    close = await client.futures_create_order(
        symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.010", reduceOnly=True, newOrderRespType="RESULT"
    )
    assert (close["side"], close["status"], close["reduceOnly"]) == ("SELL", "FILLED", True)
    assert server.position(api_key, "ETHUSDT").amount == 0
    again = await refused(
        client.futures_create_order, symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.010", reduceOnly=True
    )
    assert again.code == -2022
    assert server.position(api_key, "ETHUSDT").amount == 0


async def test_an_order_beyond_the_margin_is_refused_with_2019(server, make_client):
    server.add_account("test-key-poor", "test-secret-poor", usdt="10")
    poor = make_client("test-key-poor", "test-secret-poor")
    error = await refused(poor.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    assert (error.code, error.message) == (-2019, "Margin is insufficient.")
    assert server.orders("test-key-poor") == []


async def test_unknown_orders_and_algo_ids_on_regular_endpoints(client):
    algo = await client.futures_create_order(
        symbol="BTCUSDT", side="SELL", type="STOP_MARKET", stopPrice="55000", closePosition=True, clientAlgoId="sl-x"
    )
    for ref in ({"orderId": 123}, {"orderId": algo["algoId"]}, {"origClientOrderId": "sl-x"}):
        assert (await refused(client.futures_get_order, symbol="BTCUSDT", **ref)).code == -2013
        cancel = await refused(client.futures_cancel_order, symbol="BTCUSDT", **ref)
        assert (cancel.code, cancel.message) == (-2011, "Unknown order sent.")


async def test_a_resting_limit_order_fills_as_maker_when_the_mark_reaches_it(server, client, api_key):
    placed = await client.futures_create_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="59000.00",
        newClientOrderId="dip-1",
    )
    assert [o["clientOrderId"] for o in await client.futures_get_open_orders(symbol="BTCUSDT")] == ["dip-1"]
    server.set_mark_price("BTCUSDT", "59500")
    assert (await client.futures_get_order(symbol="BTCUSDT", orderId=placed["orderId"]))["status"] == "NEW"
    server.set_mark_price("BTCUSDT", "58900")
    [trade] = await client.futures_account_trades(symbol="BTCUSDT", orderId=placed["orderId"])
    assert (trade["price"], trade["maker"], trade["buyer"]) == ("59000.00", True, True)
    assert Decimal(trade["commission"]) == (Decimal("0.002") * Decimal("59000") * MAKER).quantize(EIGHT)
    assert await client.futures_get_open_orders() == []


async def test_user_trades_filter_by_order_and_page_by_id(client):
    ids = []
    for n in range(3):
        answer = await client.futures_create_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId=f"page-{n}"
        )
        ids.append(answer["orderId"])
    trades = await client.futures_account_trades(symbol="BTCUSDT")
    assert [t["orderId"] for t in trades] == ids
    assert [t["orderId"] for t in await client.futures_account_trades(symbol="BTCUSDT", orderId=ids[1])] == [ids[1]]
    page = await client.futures_account_trades(symbol="BTCUSDT", fromId=trades[1]["id"], limit=1)
    assert [t["id"] for t in page] == [trades[1]["id"]]
    assert [t["id"] for t in await client.futures_account_trades(symbol="BTCUSDT", limit=1)] == [trades[2]["id"]]


async def test_closing_realises_pnl_and_books_fees_in_the_wallet(server, client, api_key):
    await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.004")
    server.set_mark_price("BTCUSDT", "60123.40")
    [position] = await client.futures_position_information(symbol="BTCUSDT")
    assert (position["positionAmt"], position["entryPrice"]) == ("0.004", "60000")
    assert Decimal(position["unRealizedProfit"]) == (Decimal("60123.40") - 60000) * Decimal("0.004")
    await client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.004", reduceOnly=True)
    open_trade, close_trade = await client.futures_account_trades(symbol="BTCUSDT")
    assert Decimal(open_trade["realizedPnl"]) == 0
    assert Decimal(close_trade["realizedPnl"]) == Decimal("0.4936")
    fees = (Decimal("240") + Decimal("240.4936")) * TAKER
    assert Decimal(open_trade["commission"]) + Decimal(close_trade["commission"]) == fees
    balance = (await client.futures_account_balance())[0]
    assert Decimal(balance["balance"]) == Decimal("10000") + Decimal("0.4936") - fees
    assert await client.futures_position_information() == []
