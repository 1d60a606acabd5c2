"""The paper venue's matching rules, pure: filters and their codes, fills, fees, positions, triggers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from egis_venues.paper.matching import Book, VenueConfig, after_fill, match, triggers
from egis_venues.port import MarketOrder, OrderSide, Rejected, SymbolRules

ETH = SymbolRules("ETHUSDT", Decimal("0.001"), Decimal("0.01"), Decimal("0"), Decimal("5"))
CONFIG = VenueConfig(
    taker_fee_rate=Decimal("0.0004"), slippage_bps=Decimal("0"), fill_ratio=Decimal("1"), leverage=Decimal("1")
)
RICH = Book(Decimal("0"), Decimal("0"), Decimal("1000000"), Decimal("0"))
D = Decimal


def order(qty: str, side=OrderSide.BUY, reduce_only=False) -> MarketOrder:
    return MarketOrder("a1", "ETHUSDT", side, D(qty), "ego-x", reduce_only)


def test_a_buy_fills_at_the_mark_with_the_taker_fee_and_opens_a_long():
    execution = match(order("0.003"), ETH, D("2942.67"), RICH, CONFIG)
    assert (execution.status, execution.executed_qty, execution.price) == ("FILLED", D("0.003"), D("2942.67"))
    assert execution.fee_usd == D("0.00353120")  # 8.82801 x 0.04 %, to 8 decimals
    assert (execution.position_qty, execution.entry_price) == (D("0.003"), D("2942.67"))
    assert execution.wallet_usd == D("1000000") - D("0.00353120")


@pytest.mark.parametrize(
    "qty, mark, code",
    [
        ("0.0009", "2942.67", "-4003"),  # rounds down to zero
        ("0.001", "2942.67", "-4164"),  # 2.94 USD < 5 minimum notional
    ],
)
def test_filters_refuse_with_binance_codes(qty, mark, code):
    assert match(order(qty), ETH, D(mark), RICH, CONFIG).code == code


def test_insufficient_margin_is_refused():
    poor = Book(D("0"), D("0"), D("5"), D("0"))
    assert match(order("0.003"), ETH, D("2942.67"), poor, CONFIG) == Rejected("-2019", "Margin is insufficient.")


def test_quantity_is_rounded_down_to_the_step_and_slippage_moves_against_the_taker():
    slipping = VenueConfig(CONFIG.taker_fee_rate, D("10"), CONFIG.fill_ratio, CONFIG.leverage)
    buy = match(order("0.0039"), ETH, D("2000"), RICH, slipping)
    assert (buy.orig_qty, buy.price) == (D("0.003"), D("2002.00"))
    held = Book(D("0.003"), D("2000"), D("1000"), D("6"))
    sell = match(order("0.003", OrderSide.SELL, reduce_only=True), ETH, D("2000"), held, slipping)
    assert sell.price == D("1998.00")


def test_a_partial_fill_expires_the_rest():
    half = VenueConfig(CONFIG.taker_fee_rate, CONFIG.slippage_bps, D("0.5"), CONFIG.leverage)
    execution = match(order("0.005"), ETH, D("2000"), RICH, half)
    assert (execution.status, execution.orig_qty, execution.executed_qty) == ("EXPIRED", D("0.005"), D("0.002"))


def test_reduce_only_closes_at_most_the_position_and_never_opens_the_other_side():
    held = Book(D("0.003"), D("2942.67"), D("1000"), D("8.82801"))
    execution = match(order("0.010", OrderSide.SELL, reduce_only=True), ETH, D("3000"), held, CONFIG)
    assert execution.executed_qty == D("0.003") and execution.position_qty == 0
    assert execution.realised_pnl_usd == D("0.17199000")
    assert match(order("0.003", OrderSide.SELL, reduce_only=True), ETH, D("3000"), RICH, CONFIG).code == "-2022"
    assert match(order("0.003", OrderSide.BUY, reduce_only=True), ETH, D("3000"), held, CONFIG).code == "-2022"


def test_positions_average_their_entry_and_flip_at_the_fill_price():
    assert after_fill(D("1"), D("100"), D("1"), D("200")) == (D("2"), D("150.0000000000"), D("0"))
    assert after_fill(D("1"), D("100"), D("-3"), D("90")) == (D("-2"), D("90"), D("-10.00000000"))
    assert after_fill(D("-2"), D("90"), D("2"), D("80"))[2] == D("20.00000000")


@pytest.mark.parametrize(
    "kind, side, mark, fired",
    [
        ("TAKE_PROFIT_MARKET", OrderSide.SELL, "3100", True),
        ("TAKE_PROFIT_MARKET", OrderSide.SELL, "3099.99", False),
        ("STOP_MARKET", OrderSide.SELL, "2800", True),
        ("STOP_MARKET", OrderSide.SELL, "2800.01", False),
        ("TAKE_PROFIT_MARKET", OrderSide.BUY, "2800", True),
        ("STOP_MARKET", OrderSide.BUY, "3100", True),
    ],
)
def test_take_profit_fires_in_the_positions_favour_and_stop_against_it(kind, side, mark, fired):
    trigger = D("3100") if (kind == "TAKE_PROFIT_MARKET") == (side is OrderSide.SELL) else D("2800")
    assert triggers(kind, side, trigger, D(mark)) is fired
