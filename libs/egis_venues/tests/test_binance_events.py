"""Binance user data events parsed into exchange facts (shapes from Binance's USDⓈ-M docs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from egis_common import contracts as c
from egis_venues.binance.events import from_algo_order, from_algo_update, from_order, from_order_trade_update

TRADE_EVENT = {
    "e": "ORDER_TRADE_UPDATE",
    "E": 1763726400123,
    "T": 1763726400120,
    "o": {
        "s": "ETHUSDT",
        "c": "egt-0123456789abcdef0123456789abcdef",
        "S": "SELL",
        "o": "MARKET",
        "f": "GTC",
        "q": "0.003",
        "p": "0",
        "ap": "3001.5",
        "sp": "0",
        "x": "TRADE",
        "X": "FILLED",
        "i": 8389765519993908929,
        "l": "0.002",
        "z": "0.003",
        "L": "3002.25",
        "N": "USDT",
        "n": "0.00300225",
        "T": 1763726400120,
        "t": 1234567,
        "b": "0",
        "a": "0",
        "m": False,
        "R": True,
        "wt": "CONTRACT_PRICE",
        "ot": "TAKE_PROFIT_MARKET",
        "ps": "BOTH",
        "cp": False,
        "rp": "0.11850000",
    },
}
NEW_EVENT = {
    "e": "ORDER_TRADE_UPDATE",
    "E": 1763726400001,
    "T": 1763726400000,
    "o": {
        **TRADE_EVENT["o"],
        "x": "NEW",
        "X": "NEW",
        "z": "0",
        "l": "0",
        "L": "0",
        "ap": "0",
        "n": "0",
        "t": 0,
        "rp": "0",
        "T": 1763726400000,
    },
}
ALGO_EVENT = {
    "e": "ALGO_UPDATE",
    "T": 1763726400100,
    "E": 1763726400105,
    "o": {
        "caid": "egt-0123456789abcdef0123456789abcdef",
        "aid": 2148719,
        "at": "CONDITIONAL",
        "o": "TAKE_PROFIT_MARKET",
        "s": "ETHUSDT",
        "S": "SELL",
        "ps": "BOTH",
        "f": "GTC",
        "q": "0",
        "X": "TRIGGERED",
        "ai": "8389765519993908929",
        "ap": "0",
        "aq": "0",
        "act": "MARKET",
        "tp": "3000.5",
        "p": "0",
        "V": "EXPIRE_MAKER",
        "wt": "CONTRACT_PRICE",
        "pm": "NONE",
        "cp": True,
        "pP": False,
        "R": False,
        "tt": 0,
    },
}


def test_a_trade_execution_gives_the_order_fact_and_the_trade_fact():
    order, trade = from_order_trade_update(TRADE_EVENT, "acct-1")
    assert isinstance(order, c.ExchangeOrderFact) and isinstance(trade, c.ExchangeTradeFact)
    assert (order.exchange_order_id, order.client_order_id, order.status, order.order_type, order.reduce_only) == (
        "8389765519993908929",
        "egt-0123456789abcdef0123456789abcdef",
        "FILLED",
        "TAKE_PROFIT_MARKET",
        True,
    )
    assert (order.orig_qty, order.executed_qty, order.avg_price) == (
        Decimal("0.003"),
        Decimal("0.003"),
        Decimal("3001.5"),
    )
    assert (trade.trade_id, trade.exchange_order_id, trade.price, trade.qty) == (
        "1234567",
        "8389765519993908929",
        Decimal("3002.25"),
        Decimal("0.002"),
    )
    assert (trade.realised_pnl_usd, trade.commission, trade.commission_asset) == (
        Decimal("0.11850000"),
        Decimal("0.00300225"),
        "USDT",
    )
    assert trade.event_time == datetime(2025, 11, 21, 12, 0, 0, 120000, tzinfo=UTC)
    assert order.exchange is c.ExchangeName.BINANCE_USDM and order.exchange_account == "acct-1"
    assert order.raw == TRADE_EVENT


def test_an_order_event_without_execution_gives_only_the_order_fact():
    facts = from_order_trade_update(NEW_EVENT, "acct-1")
    assert [f.type for f in facts] == ["ExchangeOrderFact"]
    assert facts[0].status == "NEW" and facts[0].executed_qty == Decimal(0)


def test_a_triggered_algo_update_names_the_order_it_spawned():
    fact = from_algo_update(ALGO_EVENT, "acct-1")
    assert (fact.algo_id, fact.client_algo_id, fact.status, fact.order_type) == (
        "2148719",
        "egt-0123456789abcdef0123456789abcdef",
        "TRIGGERED",
        "TAKE_PROFIT_MARKET",
    )
    assert fact.spawned_order_id == "8389765519993908929" and fact.trigger_price == Decimal("3000.5")
    assert fact.event_time == datetime(2025, 11, 21, 12, 0, 0, 100000, tzinfo=UTC)


def test_an_untriggered_algo_update_has_no_spawned_order():
    fact = from_algo_update({**ALGO_EVENT, "o": {**ALGO_EVENT["o"], "X": "NEW", "ai": ""}}, "acct-1")
    assert fact.status == "NEW" and fact.spawned_order_id is None


SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "binance-samples" / "usdm_responses.json"
ALGO_BODY = {
    "algoId": 2000000000000001,
    "clientAlgoId": "egt-tp",
    "algoType": "CONDITIONAL",
    "orderType": "TAKE_PROFIT_MARKET",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "positionSide": "BOTH",
    "timeInForce": "GTC",
    "quantity": "0.000",
    "algoStatus": "FINISHED",
    "actualOrderId": "4000000002",
    "actualPrice": "61000.50000",
    "triggerPrice": "61000.00",
    "price": "0.00",
    "workingType": "MARK_PRICE",
    "closePosition": True,
    "priceProtect": False,
    "reduceOnly": False,
    "createTime": 1763726400000,
    "updateTime": 1763726400100,
    "triggerTime": 1763726400100,
    "goodTillDate": 0,
}


def test_a_rest_order_with_ids_and_times_as_strings_gives_the_order_fact():
    samples = json.loads(SAMPLES.read_text())["samples"]
    body = next(s["http_response"] for s in samples if s["ccxt_method"] == "fetchOpenOrder")
    fact = from_order(body, "acct-1")
    assert (fact.exchange_order_id, fact.client_order_id, fact.status, fact.side, fact.order_type) == (
        "664082074",
        "x-xcKtGhcu68f8383451844295b3e8b9",
        "NEW",
        "BUY",
        "LIMIT",
    )
    assert (fact.orig_qty, fact.executed_qty, fact.avg_price, fact.reduce_only) == (
        Decimal("0.200"),
        Decimal("0"),
        Decimal("0"),
        False,
    )
    assert fact.event_time == datetime(2024, 2, 14, 10, 42, 3, 991000, tzinfo=UTC) and fact.symbol == "LTCUSDT"


def test_a_rest_algo_order_names_the_order_it_spawned_and_an_untriggered_one_none():
    fact = from_algo_order(ALGO_BODY, "acct-1")
    assert (fact.algo_id, fact.client_algo_id, fact.status, fact.order_type, fact.side) == (
        "2000000000000001",
        "egt-tp",
        "FINISHED",
        "TAKE_PROFIT_MARKET",
        "SELL",
    )
    assert (fact.trigger_price, fact.spawned_order_id) == (Decimal("61000.00"), "4000000002")
    assert fact.event_time == datetime(2025, 11, 21, 12, 0, 0, 100000, tzinfo=UTC)
    waiting = from_algo_order({**ALGO_BODY, "algoStatus": "NEW", "actualOrderId": ""}, "acct-1")
    assert waiting.spawned_order_id is None
