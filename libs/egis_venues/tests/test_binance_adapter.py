"""The Binance adapter, through the real python-binance client, against the local Binance-compatible server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from egis_binance_local import BinanceLocal, local_async_client
from egis_common.ids import OrderPurpose, client_order_id
from egis_venues.binance.errors import MarketDataUnavailable, UnknownSymbol
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.binance.parse import account_trade, filled, unexecuted_outcome, venue_order
from egis_venues.port import Filled, MarketOrder, NotFound, OrderSide, Rejected, StopOrder, StopPlaced, Unknown
from egis_venues.settings import BinanceCredentials

API_KEY, API_SECRET = "egis-test-key", "egis-test-secret"
TIMEOUT_S = 0.5
ORDER_PATH, ALGO_PATH = "/fapi/v1/order", "/fapi/v1/algoOrder"
TAKER_FEE_RATE = Decimal("0.0005")  # the local server's default
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "binance-samples" / "usdm_responses.json"


def credentials(secret: str = API_SECRET) -> BinanceCredentials:
    return BinanceCredentials(api_key=API_KEY, api_secret=secret)


@pytest.fixture
async def server() -> AsyncIterator[BinanceLocal]:
    async with BinanceLocal() as venue:
        venue.add_account(API_KEY, API_SECRET, usdt="10000")
        yield venue


@pytest.fixture
async def exchange(server: BinanceLocal) -> AsyncIterator[BinanceExchange]:
    accounts = {"main": credentials(), "misconfigured": credentials(secret="not-the-secret")}
    adapter = BinanceExchange(accounts, base_url=server.base_url, request_timeout_s=TIMEOUT_S)
    yield adapter
    await adapter.close()


def market(side: OrderSide, qty: str, *, reduce_only: bool = False, account: str = "main") -> MarketOrder:
    return MarketOrder(account, "BTCUSDT", side, Decimal(qty), client_order_id(uuid.uuid4()), reduce_only)


def position_qty(server: BinanceLocal) -> Decimal:
    return server.position(API_KEY, "BTCUSDT").amount


# --- market data ------------------------------------------------------------------------------


async def test_symbol_rules_parse_exchange_info_and_are_cached_until_the_ttl(server):
    now = [0.0]
    adapter = BinanceExchange({}, base_url=server.base_url, rules_ttl_s=60, clock=lambda: now[0])
    try:
        rules = await adapter.symbol_rules("BTCUSDT")
        assert (rules.step_size, rules.tick_size, rules.min_qty, rules.min_notional_usd) == (
            Decimal("0.001"),
            Decimal("0.10"),
            Decimal("0.001"),
            Decimal("100"),
        )
        await adapter.symbol_rules("ETHUSDT")
        assert len(server.requests("GET", "/fapi/v1/exchangeInfo")) == 1
        now[0] = 61.0
        assert await adapter.symbol_rules("BTCUSDT") == rules
        assert len(server.requests("GET", "/fapi/v1/exchangeInfo")) == 2
        with pytest.raises(UnknownSymbol):
            await adapter.symbol_rules("NOPEUSDT")
    finally:
        await adapter.close()


async def test_symbol_rules_serve_the_stale_copy_when_a_refresh_fails_and_raise_without_one(server):
    now = [0.0]
    adapter = BinanceExchange({}, base_url=server.base_url, rules_ttl_s=60, clock=lambda: now[0])
    try:
        server.inject_fault("http_503", path="/fapi/v1/exchangeInfo")
        with pytest.raises(MarketDataUnavailable):
            await adapter.symbol_rules("BTCUSDT")
        rules = await adapter.symbol_rules("BTCUSDT")
        now[0] = 120.0
        server.inject_fault("http_500", path="/fapi/v1/exchangeInfo")
        assert await adapter.symbol_rules("BTCUSDT") == rules
    finally:
        await adapter.close()


async def test_mark_price_is_a_decimal(server, exchange):
    server.set_mark_price("BTCUSDT", "61234.5")
    assert await exchange.mark_price("BTCUSDT") == Decimal("61234.5")
    server.inject_fault("http_500", path="/fapi/v1/premiumIndex")
    with pytest.raises(MarketDataUnavailable):
        await exchange.mark_price("BTCUSDT")


# --- market orders ----------------------------------------------------------------------------


async def test_market_open_fills_with_decimal_quantity_price_and_fee(server, exchange):
    order = MarketOrder("main", "BTCUSDT", OrderSide.BUY, Decimal("2E-3"), client_order_id(uuid.uuid4()), False)
    outcome = await exchange.place_market_order(order)
    assert isinstance(outcome, Filled)
    [trade] = server.trades(API_KEY)
    assert (outcome.executed_qty, outcome.avg_price) == (Decimal("0.002"), Decimal("60000"))
    assert outcome.executed_qty * outcome.avg_price == trade.quote_qty == Decimal("120")
    assert outcome.fee_usd == Decimal("0.002") * Decimal("60000") * TAKER_FEE_RATE
    assert outcome.exchange_order_id == str(server.orders(API_KEY)[0].order_id)
    assert outcome.realised_pnl_usd == 0 and outcome.raw["order"]["status"] == "FILLED"
    [request] = server.requests("POST", ORDER_PATH)
    assert request.params["newClientOrderId"] == order.client_order_id
    assert (request.params["newOrderRespType"], request.params["type"]) == ("RESULT", "MARKET")
    assert request.params["quantity"] == "0.002" and "reduceOnly" not in request.params


async def test_reduce_only_close_of_a_long_sells_it_to_zero_with_realised_pnl(server, exchange):
    assert isinstance(await exchange.place_market_order(market(OrderSide.BUY, "0.003")), Filled)
    server.set_mark_price("BTCUSDT", "61000")
    outcome = await exchange.place_market_order(market(OrderSide.SELL, "0.003", reduce_only=True))
    assert isinstance(outcome, Filled)
    assert outcome.realised_pnl_usd == (Decimal("61000") - Decimal("60000")) * Decimal("0.003")
    assert outcome.fee_usd == Decimal("0.003") * Decimal("61000") * TAKER_FEE_RATE
    assert position_qty(server) == 0
    close_request = server.requests("POST", ORDER_PATH)[-1]
    assert (close_request.params["side"], close_request.params["reduceOnly"]) == ("SELL", "true")


async def test_reduce_only_larger_than_the_position_never_opens_a_short(server, exchange):
    assert isinstance(await exchange.place_market_order(market(OrderSide.BUY, "0.002")), Filled)
    outcome = await exchange.place_market_order(market(OrderSide.SELL, "0.005", reduce_only=True))
    # The local venue refuses it outright (-2022); either way the position never goes short.
    assert isinstance(outcome, Rejected) and outcome.code == "-2022"
    assert position_qty(server) == Decimal("0.002")
    flat = await exchange.place_market_order(market(OrderSide.SELL, "0.002", reduce_only=True))
    assert isinstance(flat, Filled) and position_qty(server) == 0
    nothing_to_reduce = await exchange.place_market_order(market(OrderSide.SELL, "0.002", reduce_only=True))
    assert isinstance(nothing_to_reduce, Rejected) and position_qty(server) == 0


@pytest.mark.parametrize(("qty", "code"), [("5", "-2019"), ("0.001", "-4164"), ("0.0015", "-1111")])
async def test_definitive_refusals_are_rejected_with_the_venue_code(server, exchange, qty, code):
    outcome = await exchange.place_market_order(market(OrderSide.BUY, qty))
    assert isinstance(outcome, Rejected) and outcome.code == code
    assert server.orders(API_KEY) == []


async def test_accept_then_timeout_is_unknown_within_the_timeout_and_found_filled_later(server, exchange):
    order = market(OrderSide.BUY, "0.002")
    server.inject_fault("accept_then_timeout", method="POST", path=ORDER_PATH)
    started = time.monotonic()
    outcome = await exchange.place_market_order(order)
    assert isinstance(outcome, Unknown) and outcome.cause == "timeout"
    assert time.monotonic() - started < TIMEOUT_S + 1.0
    [placed] = server.orders(API_KEY)
    assert len(server.requests("POST", ORDER_PATH)) == 1  # never resent
    found = await exchange.find_order("main", "BTCUSDT", order.client_order_id)
    assert isinstance(found, Filled) and found.exchange_order_id == str(placed.order_id)
    assert (found.executed_qty, found.fee_usd) == (Decimal("0.002"), Decimal("0.002") * 60000 * TAKER_FEE_RATE)


async def test_a_dropped_connection_after_acceptance_is_unknown_and_never_resent(server, exchange):
    order = market(OrderSide.BUY, "0.002")
    server.inject_fault("accept_then_drop", method="POST", path=ORDER_PATH)
    outcome = await exchange.place_market_order(order)
    assert isinstance(outcome, Unknown) and outcome.cause == "connection"
    assert len(server.requests("POST", ORDER_PATH)) == 1 and len(server.orders(API_KEY)) == 1
    assert isinstance(await exchange.find_order("main", "BTCUSDT", order.client_order_id), Filled)


@pytest.mark.parametrize(
    ("fault", "msg"),
    [
        ("http_500", None),  # -1000 "An unknown error occured while processing the request."
        ("http_503", "Unknown error, please check your request or try again later."),
    ],
)
async def test_server_errors_that_leave_the_execution_unknown_are_unknown_and_never_resent(
    server, exchange, fault, msg
):
    server.inject_fault(fault, method="POST", path=ORDER_PATH, **({"msg": msg} if msg else {}))
    outcome = await exchange.place_market_order(market(OrderSide.BUY, "0.002"))
    assert isinstance(outcome, Unknown) and outcome.cause.startswith("http_50")
    assert len(server.requests("POST", ORDER_PATH)) == 1 and server.orders(API_KEY) == []


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("http_503", {}),  # -1001 "Internal error; unable to process your request. Please try again."
        ("http_503", {"msg": "Service Unavailable."}),
        ("http_429", {"retry_after_s": 1}),
        ("http_418", {"retry_after_s": 1}),
    ],
)
async def test_an_order_the_venue_did_not_process_is_sent_again_and_placed_once(server, exchange, fault, options):
    order = market(OrderSide.BUY, "0.002")
    server.inject_fault(fault, method="POST", path=ORDER_PATH, **options)
    outcome = await exchange.place_market_order(order)
    assert isinstance(outcome, Filled)
    assert len(server.requests("POST", ORDER_PATH)) == 2
    (placed,) = server.orders(API_KEY)
    assert placed.client_order_id == order.client_order_id


@pytest.mark.parametrize(("fault", "status"), [("http_429", 429), ("http_418", 418)])
async def test_a_rate_limit_that_asks_for_more_time_than_the_order_has_is_refused_at_once(
    server, exchange, fault, status
):
    server.inject_fault(fault, method="POST", path=ORDER_PATH, retry_after_s=30)
    outcome = await exchange.place_market_order(market(OrderSide.BUY, "0.002"))
    assert isinstance(outcome, Rejected) and outcome.code == f"http_{status}"
    assert outcome.raw["status"] == status and outcome.raw["retry_after_s"] == "30"
    assert outcome.not_processed and outcome.retry_after_s == 30.0  # the executor may send a close again then
    assert len(server.requests("POST", ORDER_PATH)) == 1 and server.orders(API_KEY) == []


async def test_an_order_the_venue_keeps_not_processing_is_refused_after_the_resend_window(server):
    adapter = BinanceExchange(
        {"main": credentials()}, base_url=server.base_url, request_timeout_s=TIMEOUT_S, resend_within_s=0.5
    )
    try:
        server.inject_fault("http_503", count=1000, method="POST", path=ORDER_PATH)
        outcome = await adapter.place_market_order(market(OrderSide.BUY, "0.002"))
    finally:
        await adapter.close()
    assert isinstance(outcome, Rejected) and outcome.code == "http_503"
    assert len(server.requests("POST", ORDER_PATH)) >= 2 and server.orders(API_KEY) == []


async def test_a_venue_code_listed_nowhere_is_unknown_not_rejected(server, exchange):
    server.inject_fault("reject", method="POST", path=ORDER_PATH, code=-1007, msg="Timeout waiting for response")
    outcome = await exchange.place_market_order(market(OrderSide.BUY, "0.002"))
    assert isinstance(outcome, Unknown) and outcome.raw["code"] == -1007


async def test_a_duplicate_open_client_id_is_unknown_and_the_lookup_shows_the_open_order(server, exchange):
    order = market(OrderSide.BUY, "0.002")
    raw_client = local_async_client(server.base_url, API_KEY, API_SECRET)
    try:
        await raw_client.futures_create_order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.002",
            price="50000",
            newClientOrderId=order.client_order_id,
        )
    finally:
        await raw_client.close_connection()
    outcome = await exchange.place_market_order(order)
    assert isinstance(outcome, Unknown) and outcome.raw["code"] == -4116
    assert len(server.orders(API_KEY)) == 1
    found = await exchange.find_order("main", "BTCUSDT", order.client_order_id)
    assert isinstance(found, Unknown) and found.cause == "order_new"


async def test_an_unknown_account_is_rejected_without_sending_anything(server, exchange):
    outcome = await exchange.place_market_order(market(OrderSide.BUY, "0.002", account="nobody"))
    assert isinstance(outcome, Rejected) and outcome.code == "unknown_account"
    assert server.requests() == []


async def test_a_wrong_secret_is_rejected_as_a_configuration_error(server, exchange):
    outcome = await exchange.place_market_order(market(OrderSide.BUY, "0.002", account="misconfigured"))
    assert isinstance(outcome, Rejected) and outcome.code == "-1022"
    assert server.orders(API_KEY) == []


async def test_find_order_of_a_never_placed_id_is_not_found(exchange):
    assert await exchange.find_order("main", "BTCUSDT", client_order_id(uuid.uuid4())) == NotFound()


# --- take-profit and stop-loss on the Algo Service ----------------------------------------------


def take_profit(intent_id: uuid.UUID, trigger: str) -> StopOrder:
    algo_id = client_order_id(intent_id, OrderPurpose.TAKE_PROFIT)
    return StopOrder("main", "BTCUSDT", OrderSide.SELL, "TAKE_PROFIT_MARKET", Decimal(trigger), algo_id)


async def test_take_profit_triggers_on_the_mark_and_its_trades_give_pnl_and_commission(server, exchange):
    assert isinstance(await exchange.place_market_order(market(OrderSide.BUY, "0.010")), Filled)
    stop = take_profit(uuid.uuid4(), "61000.05")
    placed = await exchange.place_stop(stop)
    [algo] = server.algo_orders(API_KEY)
    assert placed == StopPlaced(str(algo.algo_id), stop.client_algo_id)
    assert (algo.client_algo_id, algo.trigger_price, algo.close_position) == (stop.client_algo_id, 61000, True)
    [request] = server.requests("POST", ALGO_PATH)
    assert (request.params["triggerPrice"], request.params["workingType"]) == ("61000.00", "MARK_PRICE")
    server.set_mark_price("BTCUSDT", "61000")
    assert algo.status == "FINISHED" and position_qty(server) == 0
    trades = await exchange.account_trades("main", "BTCUSDT", str(algo.actual_order_id))
    assert sum(t.realised_pnl_usd for t in trades) == (Decimal("61000") - Decimal("60000")) * Decimal("0.010")
    assert sum(t.commission for t in trades) == Decimal("0.010") * Decimal("61000") * TAKER_FEE_RATE


async def test_placing_the_same_stop_twice_keeps_one_algo_order(server, exchange):
    stop = take_profit(uuid.uuid4(), "65000")
    first, second = await exchange.place_stop(stop), await exchange.place_stop(stop)
    assert isinstance(first, StopPlaced) and first == second
    assert len(server.algo_orders(API_KEY)) == 1


async def test_a_stop_that_would_trigger_at_once_is_rejected(server, exchange):
    outcome = await exchange.place_stop(take_profit(uuid.uuid4(), "59000"))
    assert isinstance(outcome, Rejected) and outcome.code == "-2021"


async def test_a_stop_placement_timeout_is_unknown(server, exchange):
    server.inject_fault("accept_then_timeout", method="POST", path=ALGO_PATH)
    outcome = await exchange.place_stop(take_profit(uuid.uuid4(), "65000"))
    assert isinstance(outcome, Unknown) and len(server.algo_orders(API_KEY)) == 1


# --- parsers against recorded venue bodies --------------------------------------------------------


def recorded(description: str) -> object:
    if not SAMPLES.exists():
        pytest.skip(f"recorded Binance samples not found at {SAMPLES}")
    samples = json.loads(SAMPLES.read_text())["samples"]
    return next(s["http_response"] for s in samples if s["description"] == description)


def test_parsers_read_recorded_order_and_trade_bodies():
    [created] = recorded("create swap orders")
    open_order, [trade_body] = recorded("swap open order"), recorded("Swap private trade")
    assert venue_order(created).order_id == "4087922044"  # a JSON number on the wire
    assert unexecuted_outcome(venue_order(created)) == Unknown("order_new", created)
    trade = account_trade(trade_body)
    assert (trade.trade_id, trade.order_id, trade.price, trade.qty) == (
        "272536245",
        "3524852987",
        Decimal("36567.10"),
        Decimal("0.010"),
    )
    assert (trade.commission, trade.realised_pnl_usd, trade.traded_at.year) == (Decimal("0.14626840"), 0, 2023)
    executed = venue_order(
        {**open_order, "status": "FILLED", "executedQty": "0.010", "avgPrice": "36567.10", "cumQuote": "365.67100"}
    )
    fill = filled(executed, [trade])
    assert (fill.exchange_order_id, fill.fee_usd) == ("664082074", Decimal("0.14626840"))
    assert fill.executed_qty * fill.avg_price == trade.quote_qty
    assert fill.filled_at == venue_order(open_order).updated_at  # a JSON string on the wire
