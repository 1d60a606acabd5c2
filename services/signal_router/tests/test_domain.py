"""The router's pure rules: action words, order checks, freshness, the routing decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from router_support import new_bot

from egis_common.contracts import IntentKind, OrderIntent, Side, SignalAction, SignalReceived, SignalSkipped
from egis_common.ids import intent_id_for, signal_dedup_key, signal_id_for
from signal_router import domain
from signal_router.reasons import Rejected, RejectReason

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = domain.Limits(
    frozenset({"BTCUSDT", "ETHUSDT"}), Decimal("1"), Decimal("1000000"), timedelta(seconds=60), timedelta(seconds=30)
)
LAG = LIMITS.max_lag


@pytest.mark.parametrize(
    ("word", "action"),
    [
        ("buy", SignalAction.OPEN_LONG),
        ("LONG", SignalAction.OPEN_LONG),
        ("open-long", SignalAction.OPEN_LONG),
        (" Enter Long ", SignalAction.OPEN_LONG),
        ("sell", SignalAction.OPEN_SHORT),
        ("Short", SignalAction.OPEN_SHORT),
        ("open_short", SignalAction.OPEN_SHORT),
        ("exit", SignalAction.CLOSE),
        ("CLOSE", SignalAction.CLOSE),
        ("flat", SignalAction.CLOSE),
        ("close_long", SignalAction.CLOSE),
        ("close short", SignalAction.CLOSE),
    ],
)
def test_tradingview_words_map_to_actions(word, action):
    assert domain.parse_action(word) is action


@pytest.mark.parametrize("word", ["", "hold", "buy!", "openlong", "reverse"])
def test_an_unknown_word_is_refused(word):
    with pytest.raises(Rejected) as refused:
        domain.parse_action(word)
    assert refused.value.reason is RejectReason.UNKNOWN_ACTION


def test_symbols_are_normalised_then_checked_against_the_allow_list():
    assert domain.normalize_symbol(" btcusdt.p ", LIMITS) == "BTCUSDT"
    with pytest.raises(Rejected) as refused:
        domain.normalize_symbol("DOGEUSDT", LIMITS)
    assert refused.value.reason is RejectReason.UNKNOWN_SYMBOL


@pytest.mark.parametrize(
    ("action", "size", "tp", "sl", "reason"),
    [
        (SignalAction.OPEN_LONG, "0.5", None, None, RejectReason.SIZE_OUT_OF_RANGE),
        (SignalAction.OPEN_LONG, "1000000.01", None, None, RejectReason.SIZE_OUT_OF_RANGE),
        (SignalAction.CLOSE, "10", None, None, RejectReason.NOT_ALLOWED_FOR_CLOSE),
        (SignalAction.CLOSE, None, "1", None, RejectReason.NOT_ALLOWED_FOR_CLOSE),
        (SignalAction.OPEN_LONG, None, "90", "100", RejectReason.INCONSISTENT_TP_SL),
        (SignalAction.OPEN_SHORT, None, "110", "100", RejectReason.INCONSISTENT_TP_SL),
    ],
)
def test_order_fields_out_of_bounds_or_out_of_place_are_refused(action, size, tp, sl, reason):
    with pytest.raises(Rejected) as refused:
        domain.check_order(action, *(Decimal(v) if v else None for v in (size, tp, sl)), LIMITS)
    assert refused.value.reason is reason


def test_order_fields_within_bounds_pass():
    domain.check_order(SignalAction.OPEN_LONG, Decimal("1"), Decimal("110"), Decimal("90"), LIMITS)
    domain.check_order(SignalAction.OPEN_SHORT, Decimal("1000000"), Decimal("90"), Decimal("110"), LIMITS)
    domain.check_order(SignalAction.CLOSE, None, None, None, LIMITS)


def test_freshness_at_the_gateway():
    domain.check_fresh(None, NOW, LIMITS)
    domain.check_fresh(NOW - LAG, NOW, LIMITS)
    for stamp, reason in (
        (NOW - LAG - timedelta(seconds=1), RejectReason.STALE_SIGNAL),
        (NOW + timedelta(seconds=31), RejectReason.TIMESTAMP_IN_FUTURE),
    ):
        with pytest.raises(Rejected) as refused:
            domain.check_fresh(stamp, NOW, LIMITS)
        assert refused.value.reason is reason


def received(bot, action=SignalAction.OPEN_LONG, **fields) -> SignalReceived:
    key = signal_dedup_key(bot.signal_key, action.value, "BTCUSDT", None, uuid4().hex)
    values = {
        "signal_id": signal_id_for(key),
        "dedup_key": key,
        "signal_key": bot.signal_key,
        "bot_id": bot.bot_id,
        "action": action,
        "symbol": "BTCUSDT",
        "occurred_at": NOW,
        **fields,
    }
    return SignalReceived(**values)


def test_a_live_bot_gets_an_open_intent_with_its_default_size():
    bot, _ = new_bot()
    intent = domain.route(received(bot), bot, NOW, LAG)
    assert isinstance(intent, OrderIntent)
    assert (intent.intent, intent.side, intent.requested_size_usd) == (IntentKind.OPEN, Side.LONG, Decimal("100"))
    assert intent.intent_id == intent_id_for(intent.signal_id)


def test_an_override_size_and_tp_sl_travel_with_an_open_and_a_close_requests_no_size():
    bot, _ = new_bot()
    short = domain.route(
        received(
            bot,
            SignalAction.OPEN_SHORT,
            size_override_usd=Decimal("7.5"),
            take_profit_price=Decimal("90"),
            stop_loss_price=Decimal("110"),
        ),
        bot,
        NOW,
        LAG,
    )
    assert (short.side, short.requested_size_usd) == (Side.SHORT, Decimal("7.5"))
    assert short.take_profit_price == Decimal("90")
    close = domain.route(received(bot, SignalAction.CLOSE), bot, NOW, LAG)
    assert (close.intent, close.requested_size_usd) == (IntentKind.CLOSE, None)


@pytest.mark.parametrize(
    ("action", "prices", "expected_pcts"),
    [
        (SignalAction.OPEN_LONG, {}, ("2", "1")),
        (SignalAction.OPEN_SHORT, {}, ("2", "1")),
        (SignalAction.OPEN_LONG, {"take_profit_price": "120", "stop_loss_price": "90"}, (None, None)),
        (SignalAction.OPEN_LONG, {"take_profit_price": "120"}, (None, "1")),
        (SignalAction.OPEN_SHORT, {"stop_loss_price": "110"}, ("2", None)),
        (SignalAction.CLOSE, {}, (None, None)),
    ],
)
def test_the_bots_percentages_fill_each_stop_the_signal_names_no_price_for(action, prices, expected_pcts):
    bot, _ = new_bot(take_profit_pct=Decimal("2"), stop_loss_pct=Decimal("1"))
    intent = domain.route(received(bot, action, **{k: Decimal(v) for k, v in prices.items()}), bot, NOW, LAG)
    assert (intent.take_profit_pct, intent.stop_loss_pct) == tuple(Decimal(p) if p else None for p in expected_pcts)
    assert (intent.take_profit_price, intent.stop_loss_price) == tuple(
        Decimal(prices[k]) if k in prices else None for k in ("take_profit_price", "stop_loss_price")
    )


def test_a_bot_without_percentages_routes_an_open_without_them():
    bot, _ = new_bot()
    intent = domain.route(received(bot), bot, NOW, LAG)
    assert (intent.take_profit_pct, intent.stop_loss_pct) == (None, None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"deleted": True}, "bot_deleted"),
        ({"paused": True}, "bot_paused"),
        ({"deleted": True, "paused": True}, "bot_deleted"),
        ({"signal_key": "another"}, "unknown_signal_key"),
    ],
)
def test_a_bot_that_cannot_take_the_signal_gives_a_skip_with_its_reason(change, reason):
    bot, _ = new_bot()
    decision = domain.route(received(bot), bot.model_copy(update=change), NOW, LAG)
    assert isinstance(decision, SignalSkipped) and decision.reason.value == reason


def test_an_unknown_bot_and_a_stale_signal_are_skipped():
    bot, _ = new_bot()
    assert domain.route(received(bot), None, NOW, LAG).reason.value == "unknown_signal_key"
    old = received(bot, signal_timestamp=NOW - LAG - timedelta(seconds=1))
    assert domain.route(old, bot, NOW, LAG).reason.value == "stale_signal"
    # Without its own timestamp a signal ages from the gateway's acceptance.
    assert domain.route(received(bot), bot, NOW + LAG + timedelta(seconds=1), LAG).reason.value == "stale_signal"


@given(
    action=st.sampled_from(SignalAction),
    deleted=st.booleans(),
    paused=st.booleans(),
    same_key=st.booleans(),
    age_seconds=st.integers(-100, 10_000),
    size=st.none() | st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
)
def test_every_signal_gets_exactly_one_decision_and_an_intent_only_for_a_live_fresh_bot(
    action, deleted, paused, same_key, age_seconds, size
):
    bot, _ = new_bot()
    signal = received(bot, action, size_override_usd=size, signal_timestamp=NOW - timedelta(seconds=age_seconds))
    view = bot.model_copy(
        update={"deleted": deleted, "paused": paused, "signal_key": bot.signal_key if same_key else "other"}
    )
    decision = domain.route(signal, view, NOW, LAG)
    routable = same_key and not deleted and not paused and age_seconds <= LAG.total_seconds()
    assert isinstance(decision, OrderIntent) is routable
    if routable:
        assert decision.bot_id == bot.bot_id and decision.signal_id == signal.signal_id
        assert (decision.intent is IntentKind.CLOSE) is (action is SignalAction.CLOSE)
        assert (decision.requested_size_usd is None) is (action is SignalAction.CLOSE)
