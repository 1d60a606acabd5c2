"""The intent state machine and its decisions, pure: no Kafka, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id
from egis_venues.port import Filled, OrderSide, Rejected, SymbolRules, Unknown
from executor import domain as decisions
from executor.domain import (
    INTERRUPTED,
    NOTHING,
    RECORDING_FAILED,
    TRANSITIONS,
    IllegalTransition,
    Intent,
    ResendPolicy,
    SkipReason,
)
from executor.domain import IntentStatus as S

ETH = SymbolRules("ETHUSDT", Decimal("0.001"), Decimal("0.01"), Decimal("0"), Decimal("5"))
PAPER = frozenset({c.ExchangeName.PAPER})
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = ResendPolicy(300, lambda attempts: 2.0**attempts)  # no jitter: the waits are exact here


def intent_message(kind=c.IntentKind.OPEN, side=c.Side.LONG, size="10", **extra) -> c.OrderIntent:
    return c.OrderIntent(
        intent_id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        bot_id=uuid.uuid4(),
        intent=kind,
        side=side,
        symbol="ETHUSDT",
        requested_size_usd=Decimal(size) if size else None,
        exchange=c.ExchangeName.PAPER,
        exchange_account="a1",
        **extra,
    )


def backing(message: c.OrderIntent, **changes) -> decisions.Bot:
    """The bot as the bots topic states it, backing `message` unless `changes` say otherwise."""
    fields = {
        "bot_id": message.bot_id,
        "version": 1,
        "exchange": message.exchange,
        "exchange_account": message.exchange_account,
        "deleted": False,
    }
    return decisions.Bot(**{**fields, **changes})


def received(message: c.OrderIntent) -> decisions.Decision:
    return decisions.receive(message, PAPER, backing(message))


def reserved_for(intent: Intent, close_qty: str | None = None) -> c.BudgetReserved:
    return c.BudgetReserved(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        position_id=uuid.uuid4(),
        intent=intent.kind,
        side=intent.side,
        symbol=intent.symbol,
        reserved_usd=intent.requested_size_usd or Decimal("0"),
        close_qty=Decimal(close_qty) if close_qty else None,
    )


def submitted(message: c.OrderIntent | None = None, mark: str = "2942.67") -> Intent:
    intent = received(message or intent_message()).intent
    answer = reserved_for(intent, "0.003" if intent.kind is c.IntentKind.CLOSE else None)
    quantity = decisions.order_quantity(intent, answer, ETH, Decimal(mark))
    return decisions.submitting(intent, answer, decisions.market_order(intent, quantity), NOW).intent


def fill(qty="0.003", price="2942.67") -> Filled:
    return Filled("8000000001", Decimal(qty), Decimal(price), Decimal("0.0035312"), datetime.now(UTC))


def test_a_new_intent_asks_the_ledger_to_reserve_its_requested_size():
    message = intent_message()
    decision = received(message)
    assert decision.intent.status is S.PREFLIGHT_REQUESTED
    (command,) = decision.messages
    assert isinstance(command, c.ReserveBudget)
    assert (command.intent_id, command.requested_size_usd, command.exchange_account) == (
        message.intent_id,
        Decimal("10"),
        "a1",
    )


@pytest.mark.parametrize(
    "message, reason",
    [
        (
            intent_message().model_copy(update={"exchange": c.ExchangeName.BINANCE_USDM}),
            SkipReason.EXCHANGE_UNAVAILABLE,
        ),
        (intent_message(size=None), SkipReason.INVALID_INTENT),
    ],
)
def test_an_intent_that_can_never_execute_is_skipped_before_any_reservation(message, reason):
    decision = received(message)
    assert decision.intent.status is S.SKIPPED and decision.intent.skip_reason == reason.value
    assert decision.messages == ()


@pytest.mark.parametrize(
    "bot, reason",
    [
        (None, "unknown_bot"),
        ({"deleted": True}, "bot_deleted"),
        ({"exchange_account": "another bot's account"}, "account_mismatch"),
        ({"exchange": c.ExchangeName.BINANCE_USDM}, "account_mismatch"),
    ],
)
def test_an_intent_its_bot_does_not_back_is_refused_before_any_reservation(bot, reason):
    message = intent_message()
    decision = decisions.receive(message, PAPER, None if bot is None else backing(message, **bot))
    assert decision.intent.status is S.SKIPPED and decision.intent.skip_reason == reason
    assert decision.messages == () and decisions.is_refusal(decision)


def test_an_intent_its_bot_backs_is_no_refusal():
    decision = received(intent_message())
    assert decision.intent.status is S.PREFLIGHT_REQUESTED and not decisions.is_refusal(decision)


def test_a_preflight_rejection_skips_with_the_ledgers_reason_once():
    intent = received(intent_message()).intent
    answer = c.PreflightRejected(
        intent_id=intent.intent_id, bot_id=intent.bot_id, reason=c.PreflightRejectReason.INSUFFICIENT_BUDGET
    )
    skipped = decisions.preflight_rejected(intent, answer).intent
    assert skipped.status is S.SKIPPED and skipped.skip_reason == "insufficient_budget"
    assert decisions.preflight_rejected(skipped, answer).intent is None


def test_ten_dollars_of_eth_at_the_mark_rounds_down_to_the_step():
    intent = submitted()
    assert intent.status is S.SUBMITTING and intent.order_qty == Decimal("0.003")
    assert intent.client_order_id == client_order_id(intent.intent_id, OrderPurpose.ENTRY)
    assert ":" not in intent.client_order_id and "/" not in intent.client_order_id


def test_a_reservation_for_an_intent_already_submitting_changes_nothing_but_an_interruption_goes_pending():
    intent = submitted()
    again = decisions.submitting(intent, reserved_for(intent), decisions.market_order(intent, Decimal("1")), NOW)
    assert again.intent is None
    decision = decisions.interrupted(intent)
    assert decision.intent.status is S.PENDING_RECONCILIATION and decision.pending.cause == INTERRUPTED
    (message,) = decision.messages
    assert isinstance(message, c.OrderPendingReconciliation) and message.client_order_id == intent.client_order_id


def test_a_fill_is_published_with_the_executed_quantity_and_price():
    intent = submitted()
    decision = decisions.settle(intent, fill(), NOW, POLICY)
    (message,) = decision.messages
    assert decision.intent.status is S.FILLED
    assert (message.executed_qty, message.avg_price, message.partial) == (Decimal("0.003"), Decimal("2942.67"), False)
    assert message.executed_qty * message.avg_price == Decimal("8.82801")
    assert decisions.settle(decision.intent, fill(), NOW, POLICY).intent is None  # settled once


def test_a_partial_fill_says_so_and_an_unfilled_expiry_is_a_rejection():
    intent = submitted(mark="1000")  # 10 USD -> 0.010
    assert decisions.settle(intent, fill("0.004", "1000"), NOW, POLICY).messages[0].partial is True
    rejected = decisions.settle(intent, fill("0", "0"), NOW, POLICY)
    assert rejected.intent.status is S.REJECTED and rejected.messages[0].exchange_code == "expired_unfilled"


def test_a_rejection_carries_the_exchange_code_and_an_unknown_outcome_is_never_a_rejection():
    intent = submitted()
    rejected = decisions.settle(intent, Rejected("-2019", "Margin is insufficient."), NOW, POLICY)
    assert rejected.intent.status is S.REJECTED and rejected.messages[0].exchange_code == "-2019"
    unknown = decisions.settle(intent, Unknown("timeout", {"after": "10s"}), NOW, POLICY)
    assert unknown.intent.status is S.PENDING_RECONCILIATION
    assert isinstance(unknown.messages[0], c.OrderPendingReconciliation)
    assert unknown.pending.exchange_response["cause"] == "timeout"


def test_a_failed_recording_keeps_what_the_exchange_returned():
    decision = decisions.recording_failed(submitted(), fill(), "ConnectionError()")
    assert decision.pending.cause == RECORDING_FAILED
    assert decision.pending.exchange_response["executed_qty"] == "0.003"
    assert decision.pending.exchange_response["exchange_order_id"] == "8000000001"


def test_closing_a_long_sells_reduce_only_the_quantity_the_ledger_holds():
    intent = submitted(intent_message(kind=c.IntentKind.CLOSE, size=None))
    order = decisions.market_order(intent, intent.order_qty)
    assert (order.side, order.reduce_only, order.quantity) == (OrderSide.SELL, True, Decimal("0.003"))
    short_close = received(intent_message(kind=c.IntentKind.CLOSE, side=c.Side.SHORT, size=None)).intent
    assert short_close.order_side is OrderSide.BUY


def test_take_profit_and_stop_loss_close_from_the_other_side_on_the_tick():
    message = intent_message(take_profit_price=Decimal("3100.005"), stop_loss_price=Decimal("2800"))
    filled = decisions.settle(submitted(message), fill(), NOW, POLICY).intent
    (tp_purpose, tp), (sl_purpose, sl) = decisions.stop_orders(filled, ETH)
    assert (tp_purpose, tp.kind, tp.side, tp.trigger_price) == (
        OrderPurpose.TAKE_PROFIT,
        "TAKE_PROFIT_MARKET",
        OrderSide.SELL,
        Decimal("3100.00"),
    )
    assert (sl_purpose, sl.kind, sl.trigger_price) == (OrderPurpose.STOP_LOSS, "STOP_MARKET", Decimal("2800.00"))
    assert tp.client_algo_id != sl.client_algo_id


def test_illegal_transitions_raise():
    intent = submitted()
    with pytest.raises(IllegalTransition):
        intent.moved_to(S.SKIPPED)


def pending_one() -> Intent:
    return decisions.settle(submitted(), Unknown("timeout"), NOW, POLICY).intent


def resolution(intent: Intent, name: str, fill: c.FoundFill | None = None, **evidence) -> c.RecordResolution:
    return c.RecordResolution(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        resolution=name,
        resolved_by="auto",
        resolved_at=datetime.now(UTC),
        fill=fill,
        evidence=evidence,
    )


FOUND = c.FoundFill(
    exchange_order_id="8000000001",
    executed_qty=Decimal("0.003"),
    avg_price=Decimal("2942.67"),
    fee_usd=Decimal("0.0035312"),
    filled_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
)


def test_a_pending_order_found_filled_fills_the_intent_with_the_found_fill_and_records_the_resolution():
    intent = pending_one()
    message = resolution(intent, "found_filled", FOUND, client_order_id="x")
    decision = decisions.resolved(intent, True, message, NOW, POLICY)
    assert decision.intent.status is S.FILLED and decision.messages == ()  # the reconciler told the ledger already
    assert (decision.intent.exchange_order_id, decision.intent.executed_qty, decision.intent.fee_usd) == (
        "8000000001",
        Decimal("0.003"),
        Decimal("0.0035312"),
    )
    assert (decision.resolved.resolution, decision.resolved.resolved_at) == ("found_filled", message.resolved_at)
    assert decisions.resolved(intent, False, message, NOW, POLICY) is NOTHING  # resolved before: the first stands
    assert decisions.resolved(None, True, message, NOW, POLICY) is NOTHING  # an intent unknown here


@pytest.mark.parametrize("name", ["rejected_by_exchange", "not_found_after_window"])
def test_a_pending_order_that_never_filled_is_rejected_with_the_resolution_as_its_code(name):
    decision = decisions.resolved(pending_one(), True, resolution(pending_one(), name), NOW, POLICY)
    assert decision.intent.status is S.REJECTED and decision.intent.exchange_code == name


@pytest.mark.parametrize(("name", "fill"), [("found_filled", None), ("a_resolution_from_the_future", FOUND)])
def test_a_resolution_the_intent_cannot_follow_is_recorded_and_leaves_the_intent_pending(name, fill):
    intent = pending_one()
    decision = decisions.resolved(intent, True, resolution(intent, name, fill), NOW, POLICY)
    assert decision.intent is None and decision.resolved.resolution == name


@pytest.mark.parametrize("changes", [{"executed_qty": "0"}, {"fee_usd": 0.1}, {"avg_price": "-1"}])
def test_a_found_fill_is_as_strict_as_a_fill_on_the_wire(changes):
    with pytest.raises(ValidationError):
        c.FoundFill.model_validate({**FOUND.model_dump(mode="json"), **changes})


def test_a_pending_intent_leaves_only_for_filled_or_rejected():
    intent = pending_one()
    assert S.FILLED in TRANSITIONS[intent.status] and S.REJECTED in TRANSITIONS[intent.status]
    with pytest.raises(IllegalTransition):
        intent.moved_to(S.SKIPPED)


def test_a_reservation_is_asked_again_unchanged_only_while_the_answer_is_awaited():
    asked = received(intent_message())
    (first,) = asked.messages
    decision = decisions.ask_again(asked.intent)
    (again,) = decision.messages
    assert decision.intent is None  # the state does not change
    same = {"message_id", "occurred_at"}
    assert again.model_dump(exclude=same) == first.model_dump(exclude=same) and again.message_id != first.message_id
    assert decisions.ask_again(submitted()) is NOTHING
