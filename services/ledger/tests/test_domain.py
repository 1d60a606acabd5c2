"""The ledger's pure rules, by example."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal, Inexact

import pytest

from egis_common import contracts as c
from egis_common.ids import client_order_id
from ledger import domain
from ledger.domain import Bot, IllegalTransition, Position, PositionStatus

BOT = Bot(uuid.uuid4(), Decimal("100"), "paper", "acct")


def position(status: PositionStatus, **fields) -> Position:
    values = dict(
        position_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        symbol="ETHUSDT",
        side=c.Side.LONG,
        status=status,
        exchange="paper",
        exchange_account="acct",
        requested_size_usd=Decimal("10"),
        open_intent_id=uuid.uuid4(),
    )
    if status in (PositionStatus.OPEN, PositionStatus.CLOSING, PositionStatus.CLOSED):
        values.update(
            size_usd=Decimal("8.82801"),
            executed_qty=Decimal("0.003"),
            avg_entry_price=Decimal("2942.67"),
            opened_at=datetime.now(UTC),
        )
    return Position(**{**values, **fields})


def test_budget_without_positions_is_the_initial_budget():
    assert domain.compute_budget(Decimal("75"), []).available_usd == Decimal("75")


def test_closed_and_failed_positions_reserve_nothing():
    closed = position(
        PositionStatus.CLOSED,
        close_exchange_order_id="1",
        close_price=Decimal("3000"),
        closed_at=datetime.now(UTC),
        realised_pnl_usd=Decimal("0"),
    )
    budget = domain.compute_budget(Decimal("75"), [closed, position(PositionStatus.FAILED)])
    assert budget == domain.Budget(Decimal("75"), Decimal("0"), Decimal("0"), Decimal("75"))


def test_open_reserves_executed_size_and_opening_reserves_requested_size():
    budget = domain.compute_budget(
        Decimal("100"), [position(PositionStatus.OPEN), position(PositionStatus.OPENING, symbol="BTCUSDT")]
    )
    assert budget.reserved_open_usd == Decimal("8.82801")
    assert budget.reserved_opening_usd == Decimal("10")
    assert budget.available_usd == Decimal("81.17199")


def test_the_debug_log_states_every_input_and_step():
    lines = []
    domain.compute_budget(
        Decimal("100"), [position(PositionStatus.OPEN)], debug=lambda event, **kw: lines.append((event, kw))
    )
    ((event, fields),) = lines
    assert event == "budget_computed"
    assert fields["initial_usd"] == "100" and fields["available_usd"] == "91.17199"
    assert fields["reserved_open_usd"] == "8.82801" and len(fields["open_positions"]) == 1
    assert "exact" in fields["rounding"]


def test_inexact_arithmetic_raises_instead_of_rounding():
    huge = position(PositionStatus.OPEN, size_usd=Decimal("1e-70"))
    with pytest.raises(Inexact):
        domain.compute_budget(Decimal("1" + "0" * 20), [huge])


def test_illegal_transitions_raise():
    with pytest.raises(IllegalTransition):
        position(PositionStatus.FAILED).moved_to(PositionStatus.OPEN)
    with pytest.raises(IllegalTransition):
        position(PositionStatus.OPENING).moved_to(PositionStatus.CLOSING)


@pytest.mark.parametrize(
    "bot, reason",
    [
        (None, c.PreflightRejectReason.UNKNOWN_BOT),
        (Bot(BOT.bot_id, Decimal("100"), "paper", "acct", deleted=True), c.PreflightRejectReason.BOT_DELETED),
        (Bot(BOT.bot_id, Decimal("100"), "paper", "acct", paused=True), c.PreflightRejectReason.BOT_PAUSED),
    ],
)
def test_opens_for_missing_deleted_or_paused_bots_are_rejected(bot, reason):
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=c.IntentKind.OPEN,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        requested_size_usd=Decimal("10"),
        exchange_account="acct",
    )
    assert domain.decide_reservation(command, bot, [], None, uuid.uuid4(), Decimal("1")).rejection is reason


@pytest.mark.parametrize("kind", [c.IntentKind.OPEN, c.IntentKind.CLOSE])
def test_a_reservation_on_an_account_not_the_bots_is_refused_at_once_even_behind_an_order_in_flight(kind):
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=kind,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        requested_size_usd=Decimal("10") if kind is c.IntentKind.OPEN else None,
        exchange_account="another bot's account",
    )
    in_flight = position(PositionStatus.OPENING)
    assert not domain.must_wait(command, BOT, [in_flight], earlier_waiting=True)
    outcome = domain.decide_reservation(command, BOT, [position(PositionStatus.OPEN)], None, uuid.uuid4(), Decimal("1"))
    assert outcome.rejection is c.PreflightRejectReason.ACCOUNT_MISMATCH
    assert (outcome.created, outcome.positions) == ((), ())


def test_a_close_is_refused_when_the_position_is_on_another_account_than_the_bots_now():
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=c.IntentKind.CLOSE,
        side=None,
        symbol="ETHUSDT",
        exchange_account="acct",
    )
    elsewhere = position(PositionStatus.OPEN, exchange_account="the bot's account before an edit")
    outcome = domain.decide_reservation(command, BOT, [elsewhere], None, uuid.uuid4(), Decimal("1"))
    assert outcome.rejection is c.PreflightRejectReason.ACCOUNT_MISMATCH and outcome.positions == ()


def test_a_found_fill_is_refused_unless_it_is_the_positions_intents_order():
    opening = position(PositionStatus.OPENING)
    intent_id = opening.open_intent_id
    found = c.ApplyFoundFill(
        bot_id=BOT.bot_id,
        intent_id=intent_id,
        position_id=opening.position_id,
        intent=c.IntentKind.OPEN,
        client_order_id=client_order_id(intent_id),
        exchange_order_id="1",
        executed_qty=Decimal("0.003"),
        avg_price=Decimal("2942.67"),
        fee_usd=Decimal("0"),
        filled_at=datetime.now(UTC),
    )
    assert domain.found_fill_refusal(found, opening) is None
    other_intent = found.model_copy(update={"intent_id": uuid.uuid4()})
    assert domain.found_fill_refusal(other_intent, opening).refusal is domain.ClaimRefusal.INTENT_MISMATCH
    as_a_close = found.model_copy(update={"intent": c.IntentKind.CLOSE})
    assert domain.found_fill_refusal(as_a_close, opening).refusal is domain.ClaimRefusal.INTENT_MISMATCH
    other_order = found.model_copy(update={"client_order_id": client_order_id(uuid.uuid4())})
    assert domain.found_fill_refusal(other_order, opening).refusal is domain.ClaimRefusal.CLIENT_ORDER_ID_MISMATCH


def test_a_paused_bot_may_still_close():
    open_position = position(PositionStatus.OPEN)
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=c.IntentKind.CLOSE,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        exchange_account="acct",
    )
    paused = Bot(BOT.bot_id, Decimal("100"), "paper", "acct", paused=True)
    outcome = domain.decide_reservation(command, paused, [open_position], None, uuid.uuid4(), Decimal("1"))
    assert outcome.rejection is None and outcome.positions[0].status is PositionStatus.CLOSING


def test_account_symbol_in_use_and_below_min_size():
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=c.IntentKind.OPEN,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        requested_size_usd=Decimal("0.5"),
        exchange_account="acct",
    )
    assert (
        domain.decide_reservation(command, BOT, [], uuid.uuid4(), uuid.uuid4(), Decimal("1")).rejection
        is c.PreflightRejectReason.ACCOUNT_SYMBOL_IN_USE
    )
    assert (
        domain.decide_reservation(command, BOT, [], None, uuid.uuid4(), Decimal("1")).rejection
        is c.PreflightRejectReason.BELOW_MIN_SIZE
    )


def test_a_close_of_the_wrong_side_is_rejected():
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=c.IntentKind.CLOSE,
        side=c.Side.SHORT,
        symbol="ETHUSDT",
        exchange_account="acct",
    )
    outcome = domain.decide_reservation(command, BOT, [position(PositionStatus.OPEN)], None, uuid.uuid4(), Decimal("1"))
    assert outcome.rejection is c.PreflightRejectReason.NO_OPEN_POSITION_TO_CLOSE


def test_short_pnl_is_positive_when_price_falls():
    assert domain.realised_pnl(c.Side.SHORT, Decimal("100"), Decimal("90"), Decimal("2")) == Decimal("20")
    assert domain.realised_pnl(c.Side.LONG, Decimal("100"), Decimal("90"), Decimal("2")) == Decimal("-20")


def test_deletion_refused_while_positions_are_active():
    assert domain.deletion_refusal([]) is None
    assert "ETHUSDT (open)" in domain.deletion_refusal([position(PositionStatus.OPEN)])


def test_only_the_last_budget_of_each_bot_in_a_transaction_is_published():
    a, b = uuid.uuid4(), uuid.uuid4()

    def budget(bot: uuid.UUID, available: str) -> c.BudgetChanged:
        return c.BudgetChanged(
            bot_id=bot,
            initial_usd=Decimal("10"),
            reserved_open_usd=Decimal("0"),
            reserved_opening_usd=Decimal("0"),
            available_usd=Decimal(available),
        )

    answer = c.PreflightRejected(intent_id=uuid.uuid4(), bot_id=a, reason="insufficient_budget")
    messages = [budget(a, "9"), answer, budget(b, "5"), budget(a, "8")]
    assert domain.latest_budget_per_bot(messages) == [answer, messages[2], messages[3]]


def test_a_close_without_a_side_closes_whatever_the_bot_holds_even_a_short():
    short = position(PositionStatus.OPEN, side=c.Side.SHORT)
    command = c.ReserveBudget(
        intent_id=uuid.uuid4(),
        bot_id=BOT.bot_id,
        intent=c.IntentKind.CLOSE,
        side=None,
        symbol="ETHUSDT",
        exchange_account="acct",
    )
    outcome = domain.decide_reservation(command, BOT, [short], None, uuid.uuid4(), Decimal("1"))
    assert outcome.rejection is None and outcome.positions[0].status is PositionStatus.CLOSING
    assert outcome.messages[0].side is c.Side.SHORT  # the answer names the position's side for the executor


def test_only_a_message_that_ends_its_intents_reservation_settles_a_pending_order():
    opening = position(PositionStatus.OPENING)
    intent_id = opening.open_intent_id
    ids = dict(bot_id=BOT.bot_id, intent_id=intent_id, position_id=opening.position_id, intent=c.IntentKind.OPEN)
    rejected = c.OrderRejected(**ids, client_order_id="x", exchange_code="-2019", reason="margin")
    refused = domain.decide_execution(rejected, opening, BOT.initial_budget_usd, [])
    assert domain.settles_reservation(rejected, refused)
    pending = c.OrderPendingReconciliation(
        **ids, symbol="ETHUSDT", client_order_id="x", exchange=c.ExchangeName.PAPER, exchange_account="a", cause="t"
    )
    # A message of another kind, even with an outcome that moved the position, settles nothing.
    assert not domain.settles_reservation(pending, refused)
    # A rejection of an intent the position no longer holds changes nothing, so it settles nothing either.
    late = domain.decide_execution(rejected, refused.positions[0], BOT.initial_budget_usd, [])
    assert late.positions == () and not domain.settles_reservation(rejected, late)
    # A close released: the position is open again and no longer holds the close intent.
    closing = position(PositionStatus.CLOSING, close_intent_id=uuid.uuid4())
    release = c.ReleaseReservation(bot_id=BOT.bot_id, intent_id=closing.close_intent_id, reason="not_found")
    reopened = domain.apply_rejection(closing, "released:not_found", BOT.initial_budget_usd, [])
    assert domain.settles_reservation(release, reopened)
    still_held = domain.Outcome(positions=(closing,))
    assert not domain.settles_reservation(release, still_held)
