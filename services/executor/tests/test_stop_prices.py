"""A bot's take-profit and stop-loss percentages as trigger prices: from the executed entry, on the tick,
rounded toward the entry, exact. Pure: `executor.domain.price_from_entry` and `stop_orders`."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_executor_domain import ETH, NOW, POLICY, fill, intent_message, received, submitted

from egis_common import contracts as c
from egis_common.ids import OrderPurpose
from egis_venues.port import OrderSide
from executor import domain as decisions

D = Decimal


@pytest.mark.parametrize(
    ("entry", "pct", "above", "tick", "expected"),
    [
        ("2942.67", "2", True, "0.01", "3001.52"),  # long TP: 3001.5234 rounds down
        ("2942.67", "1", False, "0.01", "2913.25"),  # long SL: 2913.2433 rounds up
        ("2942.67", "2", False, "0.01", "2883.82"),  # short TP: 2883.8166 rounds up
        ("2942.67", "1", True, "0.01", "2972.09"),  # short SL: 2972.0967 rounds down
        ("100", "2", True, "0.01", "102"),  # already on the tick: unchanged
        ("100", "1", False, "0.01", "99"),
        ("64321.5", "0.75", True, "0.1", "64803.9"),  # 64803.91125
        ("64321.5", "0.75", False, "0.1", "63839.1"),  # 63839.08875
        ("0.123456", "3.5", False, "0.00001", "0.11914"),  # 0.11913504
        ("100", "1000", True, "0.01", "1100"),
        ("100", "99.99", False, "0.01", "0.01"),  # a tiny SL price stays above zero
        ("100", "100", False, "0.01", None),  # a short's TP of 100 % would be zero: no order
        ("100", "150", False, "0.01", None),
        ("0.004", "2", True, "0.01", None),  # an entry below one tick rounds down to zero: no order
        ("100", "2", True, "0.05", "102"),
        ("101.03", "2", True, "0.05", "103.05"),  # 103.0506
    ],
)
def test_percentages_become_trigger_prices_rounded_toward_the_entry(entry, pct, above, tick, expected):
    price = decisions.price_from_entry(D(entry), D(pct), above=above, tick_size=D(tick))
    assert price == (D(expected) if expected else None)


prices = st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=6)
percentages = st.decimals(min_value=D("0.01"), max_value=D("99.99"), places=4)
ticks = st.sampled_from([D("0.1"), D("0.01"), D("0.0001"), D("0.00001"), D("0.5"), D("1")])


@given(entry=prices, pct=percentages, above=st.booleans(), tick=ticks)
def test_a_trigger_is_on_the_tick_and_never_further_from_the_entry_than_asked(entry, pct, above, tick):
    assume(entry >= tick)  # a venue's prices are whole ticks
    price = decisions.price_from_entry(entry, pct, above=above, tick_size=tick)
    exact = entry * (1 + pct / 100) if above else entry * (1 - pct / 100)
    assert price is not None and price > 0
    assert price % tick == 0
    assert abs(exact - price) < tick  # the nearest tick on the entry's side
    assert (price <= exact) if above else (price >= exact)  # toward the entry: never further than asked


def filled(**extra):
    return decisions.settle(submitted(intent_message(**extra)), fill(price="2942.67"), NOW, POLICY).intent


def triggers(intent) -> dict[OrderPurpose, tuple[str, OrderSide, Decimal]]:
    orders = decisions.stop_orders(intent, ETH)
    return {purpose: (order.kind, order.side, order.trigger_price) for purpose, order in orders}


def test_a_long_and_a_short_get_their_stops_from_the_fill_price():
    assert triggers(filled(take_profit_pct=D("2"), stop_loss_pct=D("1"))) == {
        OrderPurpose.TAKE_PROFIT: ("TAKE_PROFIT_MARKET", OrderSide.SELL, D("3001.52")),
        OrderPurpose.STOP_LOSS: ("STOP_MARKET", OrderSide.SELL, D("2913.25")),
    }
    assert triggers(filled(side=c.Side.SHORT, take_profit_pct=D("2"), stop_loss_pct=D("1"))) == {
        OrderPurpose.TAKE_PROFIT: ("TAKE_PROFIT_MARKET", OrderSide.BUY, D("2883.82")),
        OrderPurpose.STOP_LOSS: ("STOP_MARKET", OrderSide.BUY, D("2972.09")),
    }


def test_an_explicit_price_wins_over_a_percentage_leg_by_leg():
    assert triggers(filled(take_profit_price=D("3100"), take_profit_pct=D("2"), stop_loss_pct=D("1"))) == {
        OrderPurpose.TAKE_PROFIT: ("TAKE_PROFIT_MARKET", OrderSide.SELL, D("3100.00")),
        OrderPurpose.STOP_LOSS: ("STOP_MARKET", OrderSide.SELL, D("2913.25")),
    }
    assert set(triggers(filled(stop_loss_pct=D("1")))) == {OrderPurpose.STOP_LOSS}
    assert triggers(filled()) == {}


def test_a_short_take_profit_that_would_reach_zero_is_not_placed():
    assert set(triggers(filled(side=c.Side.SHORT, take_profit_pct=D("100"), stop_loss_pct=D("1")))) == {
        OrderPurpose.STOP_LOSS
    }


def test_the_percentages_are_kept_on_the_intent_record():
    intent = received(intent_message(take_profit_pct=D("2.5"), stop_loss_pct=D("0.5"))).intent
    assert (intent.take_profit_pct, intent.stop_loss_pct) == (D("2.5"), D("0.5"))
