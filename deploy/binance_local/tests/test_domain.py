"""Pure pieces: position arithmetic, filters, signature payloads, trigger directions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from egis_binance_local.algos import is_triggered
from egis_binance_local.auth import strip_signature
from egis_binance_local.errors import BinanceError
from egis_binance_local.positions import apply_fill
from egis_binance_local.rules import check_client_id, check_price, check_quantity
from egis_binance_local.symbols import DEFAULT_SYMBOLS

BTC = DEFAULT_SYMBOLS[0]


def test_adding_to_a_position_averages_the_entry():
    effect = apply_fill(D("0.002"), D("60000"), D("0.001"), D("61500"))
    assert (effect.amount, effect.entry_price, effect.realized_pnl) == (D("0.003"), D("60500"), 0)


def test_reducing_a_short_realises_profit_when_the_price_fell():
    effect = apply_fill(D("-0.004"), D("60000"), D("0.001"), D("59000.10"))
    assert (effect.amount, effect.entry_price, effect.realized_pnl) == (D("-0.003"), D("60000"), D("0.9999"))


def test_flipping_closes_the_old_side_and_opens_at_the_fill_price():
    effect = apply_fill(D("0.001"), D("60000"), D("-0.003"), D("59000"))
    assert (effect.amount, effect.entry_price, effect.realized_pnl) == (D("-0.002"), D("59000"), D("-1"))


def test_closing_exactly_leaves_no_entry_price():
    effect = apply_fill(D("0.001"), D("60000"), D("-0.001"), D("60000"))
    assert (effect.amount, effect.entry_price) == (0, 0)


@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        ("0.0010", None),
        ("0.001", None),
        ("0.0005", -1111),
        ("0", -4003),
        ("0.0001", -1111),
        ("1000.001", -4005),
    ],
)
def test_quantity_checks(quantity, code):
    try:
        check_quantity(BTC, D(quantity), market=False)
    except BinanceError as error:
        assert error.code == code
    else:
        assert code is None


@pytest.mark.parametrize(
    ("price", "code"), [("60000.1", None), ("60000.10", None), ("60000.05", -4014), ("60000.001", -1111), ("0", -4001)]
)
def test_price_checks(price, code):
    try:
        check_price(BTC, D(price))
    except BinanceError as error:
        assert error.code == code
    else:
        assert code is None


@pytest.mark.parametrize(
    ("value", "code"), [("intent-7f3a.tp_1", None), ("bot:1/x", None), ("a" * 37, -4015), ("bad id", -1100)]
)
def test_client_id_checks(value, code):
    try:
        check_client_id(value, "newClientOrderId")
    except BinanceError as error:
        assert error.code == code
    else:
        assert code is None


def test_the_signature_segment_is_removed_and_nothing_else_changes():
    assert strip_signature("a=1&b=%3A&signature=ff") == "a=1&b=%3A"
    assert strip_signature("") == ""


@pytest.mark.parametrize(
    ("order_type", "side", "mark", "fires"),
    [
        ("STOP_MARKET", "SELL", "99", True),
        ("STOP_MARKET", "SELL", "101", False),
        ("STOP_MARKET", "BUY", "101", True),
        ("TAKE_PROFIT_MARKET", "SELL", "101", True),
        ("TAKE_PROFIT_MARKET", "BUY", "99", True),
        ("TAKE_PROFIT_MARKET", "BUY", "101", False),
    ],
)
def test_trigger_directions(order_type, side, mark, fires):
    assert is_triggered(order_type, side, D("100"), D(mark)) is fires
