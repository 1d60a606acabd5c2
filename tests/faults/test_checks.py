"""The fault suite's checks (bench/faults/checks.py): each one passes a clean trial and catches its own violation.

Evidence is built by hand: one paper bot whose open and close both filled, the
position closed with every fact, the venue flat, the budget back to its initial
value. Each test breaks exactly one thing in it.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "faults"))
import checks  # noqa: E402
from checks import Budget, DeadLetter, Decision, Evidence, Intent, Order, Position, Post  # noqa: E402

from egis_common.ids import client_order_id, intent_id_for  # noqa: E402

D = Decimal
BOT, ACCOUNT, SYMBOL = str(uuid.uuid4()), "paper-a", "ETHUSDT"


def post(action: str, client_id: str, sent_at: float, status: int | str = 202) -> Post:
    draft = Post(BOT, "key-a", SYMBOL, action, client_id, sent_at, status)
    return replace(draft, signal_id=draft.derived_signal_id if status == 202 else None)


def intent_for(p: Post) -> str:
    return str(intent_id_for(uuid.UUID(p.derived_signal_id)))


def clean() -> Evidence:
    opening, closing = post("buy", "o-1", 1.0), post("exit", "c-1", 3.0)
    open_id, close_id = intent_for(opening), intent_for(closing)
    position = Position(
        str(uuid.uuid4()),
        BOT,
        SYMBOL,
        "long",
        "closed",
        ACCOUNT,
        open_id,
        D("25"),
        D("23.54136"),
        D("0.008"),
        D("2942.67"),
        close_id,
        "1002",
        D("3000"),
        datetime.now(UTC),
        D("0.45864"),
    )
    return Evidence(
        posts=[opening, closing],
        initial_budgets={BOT: D("1000")},
        decisions={p.signal_id: Decision(p.signal_id, "routed", intent_for(p)) for p in (opening, closing)},
        intents={
            open_id: Intent(open_id, BOT, "open", SYMBOL, "filled", client_order_id(uuid.UUID(open_id))),
            close_id: Intent(close_id, BOT, "close", SYMBOL, "filled", client_order_id(uuid.UUID(close_id))),
        },
        positions=[position],
        orders=[
            Order("paper", ACCOUNT, SYMBOL, "1001", client_order_id(uuid.UUID(open_id)), "BUY", "FILLED", D("0.008")),
            Order("paper", ACCOUNT, SYMBOL, "1002", client_order_id(uuid.UUID(close_id)), "SELL", "FILLED", D("0.008")),
        ],
        account_venue={ACCOUNT: "paper"},
        reported_budgets={BOT: Budget(D("1000"), D("0"), D("0"), D("1000"))},
        last_budget_events={BOT: Budget(D("1000.00"), D("0"), D("0"), D("1000.00"))},
        unpublished_outbox={"ledger": 0, "executor": 0},
        quiescent_after_s=2.5,
        quiescence_timeout_s=30,
    )


def found(e: Evidence, check: str) -> list[checks.Finding]:
    return [f for f in checks.check_all(e) if f.check == check]


def test_a_clean_trial_has_no_findings():
    assert checks.check_all(clean()) == []


def test_an_accepted_signal_the_router_never_decided_is_lost():
    e = clean()
    del e.decisions[e.posts[1].signal_id]
    (lost,) = found(e, "lost_signal")
    assert lost.violation and lost.subject == e.posts[1].signal_id


def test_a_routed_signal_the_executor_never_recorded_is_lost():
    e = clean()
    del e.intents[intent_for(e.posts[0])]
    assert [f.subject for f in found(e, "lost_signal")] == [e.posts[0].signal_id]


def test_a_refused_signal_that_was_routed_anyway_is_noted_not_counted():
    e = clean()
    refused = post("buy", "o-2", 5.0, status=503)
    e.posts.append(refused)
    e.decisions[refused.derived_signal_id] = Decision(refused.derived_signal_id, "skipped", None, "existing")
    (note,) = found(e, "refused_then_routed")
    assert not note.violation


def test_two_venue_orders_with_one_client_order_id_are_a_duplicate_order():
    e = clean()
    e.orders.append(replace(e.orders[0], order_id="1003"))
    (duplicate,) = found(e, "duplicate_order")
    assert duplicate.subject == e.orders[0].client_order_id


def test_two_positions_opened_by_one_intent_are_a_duplicate_position():
    e = clean()
    e.positions.append(replace(e.positions[0], position_id=str(uuid.uuid4())))
    assert [f.detail for f in found(e, "duplicate_position")] == ["2 positions opened by one intent"]


def test_two_active_positions_of_one_bot_and_symbol_are_a_duplicate_position():
    e = clean()
    e.positions = [
        replace(e.positions[0], status="open", open_intent_id=str(uuid.uuid4()), position_id=str(i)) for i in range(2)
    ]
    assert "2 active positions" in [f.detail for f in found(e, "duplicate_position")]


def test_a_venue_order_whose_intent_was_never_recorded_has_no_durable_intent():
    e = clean()
    stray = client_order_id(uuid.uuid4())
    e.orders.append(Order("binance", "bn-1", SYMBOL, "77", stray, "BUY", "FILLED", D("0.008")))
    assert [f.subject for f in found(e, "order_without_intent")] == [stray]


def test_an_order_whose_intent_never_recorded_the_client_order_id_has_no_durable_intent():
    e = clean()
    open_id = intent_for(e.posts[0])
    e.intents[open_id] = replace(e.intents[open_id], client_order_id=None)
    assert [f.subject for f in found(e, "order_without_intent")] == [e.orders[0].client_order_id]


@pytest.mark.parametrize("fact", ["close_exchange_order_id", "close_price", "closed_at", "realised_pnl_usd"])
def test_a_closed_position_missing_a_close_fact_is_caught(fact):
    e = clean()
    e.positions[0] = replace(e.positions[0], **{fact: None})
    (broken,) = found(e, "closed_without_facts")
    assert fact in broken.detail


def test_a_reported_budget_off_by_the_smallest_amount_breaks_the_formula():
    e = clean()
    e.reported_budgets[BOT] = Budget(D("1000"), D("0"), D("0"), D("999.99999999"))
    (off,) = found(e, "budget")
    assert "ledger API" in off.detail


def test_a_last_budget_event_that_forgot_an_open_position_breaks_the_formula():
    e = clean()
    e.positions[0] = replace(
        e.positions[0],
        status="open",
        close_intent_id=None,
        close_exchange_order_id=None,
        close_price=None,
        closed_at=None,
        realised_pnl_usd=None,
    )
    e.reported_budgets[BOT] = Budget(D("1000"), D("23.54136"), D("0"), D("976.45864"))
    e.venue_positions[("paper", ACCOUNT, SYMBOL)] = D("0.008")
    e.posts.pop()  # the close was never sent, so the position is meant to stay open
    assert [f.detail.split(" says")[0] for f in found(e, "budget")] == ["last BudgetChanged"]


def test_an_opening_position_reserves_its_requested_size_in_the_formula():
    opening = replace(clean().positions[0], status="opening", size_usd=D("0"))
    assert checks.budget_formula(D("1000"), [opening]).available_usd == D("975")


def test_a_size_that_is_not_executed_qty_times_avg_price_is_caught():
    e = clean()
    e.positions[0] = replace(e.positions[0], size_usd=D("23.5414"))
    (off,) = found(e, "budget")
    assert "executed_qty x avg_entry_price = 23.54136" in off.detail


def test_a_budget_below_zero_is_caught():
    e = clean()
    e.initial_budgets[BOT] = D("10")
    e.positions[0] = replace(e.positions[0], status="open")
    e.reported_budgets, e.last_budget_events = {}, {}
    assert any("below zero" in f.detail for f in found(e, "budget"))


def test_an_unpublished_outbox_row_is_caught():
    e = clean()
    e.unpublished_outbox["executor"] = 2
    (unpublished,) = found(e, "unpublished_outbox")
    assert (unpublished.subject, unpublished.detail) == ("executor", "2 outbox rows never published")


@pytest.mark.parametrize("status", ["preflight_requested", "reserved", "submitting", "pending_reconciliation"])
def test_an_intent_left_in_an_intermediate_state_is_caught(status):
    e = clean()
    open_id = intent_for(e.posts[0])
    e.intents[open_id] = replace(e.intents[open_id], status=status)
    assert [f.subject for f in found(e, "intermediate_state")] == [open_id]


@pytest.mark.parametrize("status", ["opening", "closing"])
def test_a_position_left_in_an_intermediate_state_is_caught(status):
    e = clean()
    e.positions[0] = replace(e.positions[0], status=status)
    assert [f.subject for f in found(e, "intermediate_state")] == [e.positions[0].position_id]


def test_an_unresolved_pending_record_is_caught():
    e = clean()
    e.unresolved_pending = [intent_for(e.posts[0])]
    assert len(found(e, "intermediate_state")) == 1


def test_a_dead_letter_of_a_valid_message_is_a_violation_and_of_garbage_a_note():
    e = clean()
    e.dead_letters = [
        DeadLetter("egis.executor.executions.v1", 2, 40, "OperationalError: the database is gone", True),
        DeadLetter("egis.executor.executions.v1", 2, 41, "ValidationError", False),
    ]
    assert [f.violation for f in found(e, "dead_letter")] == [True, False]


def test_a_trial_that_never_went_quiet_is_caught():
    e = clean()
    e.quiescent_after_s = None
    assert [f.check for f in checks.check_all(e)] == ["not_quiescent"]


def test_a_service_that_exited_on_its_own_is_caught():
    e = clean()
    e.exited_on_their_own = ["ledger"]
    assert [f.subject for f in found(e, "service_exited")] == ["ledger"]


def test_a_close_refused_while_its_open_was_in_flight_leaves_the_position_open():
    e = clean()
    close_id = intent_for(e.posts[1])
    e.intents[close_id] = replace(e.intents[close_id], status="skipped", skip_reason="no_open_position_to_close")
    e.positions[0] = replace(
        e.positions[0],
        status="open",
        close_intent_id=None,
        close_exchange_order_id=None,
        close_price=None,
        closed_at=None,
        realised_pnl_usd=None,
    )
    e.orders.pop()
    e.venue_positions[("paper", ACCOUNT, SYMBOL)] = D("0.008")
    e.reported_budgets[BOT] = e.last_budget_events[BOT] = Budget(D("1000"), D("23.54136"), D("0"), D("976.45864"))
    (left,) = found(e, "close_not_applied")
    assert "left open" in left.detail and "no_open_position_to_close" in left.detail


def test_a_position_closed_by_a_later_close_than_the_first_one_sent_is_caught():
    e = clean()
    late = post("exit", "c-2", 9.0)
    late_id = intent_for(late)
    e.posts.append(late)
    e.decisions[late.signal_id] = Decision(late.signal_id, "routed", late_id)
    e.intents[late_id] = Intent(late_id, BOT, "close", SYMBOL, "filled", client_order_id(uuid.UUID(late_id)))
    first_close = intent_for(e.posts[1])
    e.intents[first_close] = replace(e.intents[first_close], status="skipped", skip_reason="no_open_position_to_close")
    e.positions[0] = replace(e.positions[0], close_intent_id=late_id)
    e.orders[1] = replace(e.orders[1], client_order_id=client_order_id(uuid.UUID(late_id)))
    (late_close,) = found(e, "close_not_applied")
    assert "closed by a later close" in late_close.detail


def test_a_close_skipped_as_stale_leaves_the_position_open_on_purpose():
    e = clean()
    closing = e.posts[1]
    e.decisions[closing.signal_id] = Decision(closing.signal_id, "skipped", None, "stale_signal")
    del e.intents[intent_for(closing)]
    e.positions[0] = replace(
        e.positions[0],
        status="open",
        close_intent_id=None,
        close_exchange_order_id=None,
        close_price=None,
        closed_at=None,
        realised_pnl_usd=None,
    )
    e.orders.pop()
    e.venue_positions[("paper", ACCOUNT, SYMBOL)] = D("0.008")
    e.reported_budgets[BOT] = e.last_budget_events[BOT] = Budget(D("1000"), D("23.54136"), D("0"), D("976.45864"))
    (note,) = checks.check_all(e)
    assert (note.check, note.violation) == ("close_skipped_on_purpose", False) and "stale_signal" in note.detail


def test_a_venue_position_the_ledger_does_not_hold_is_drift():
    e = clean()
    e.venue_positions[("paper", ACCOUNT, SYMBOL)] = D("0.008")  # the close order never reached the venue's book
    (drift,) = found(e, "venue_drift")
    assert drift.subject == f"paper/{ACCOUNT}/{SYMBOL}" and "0.008" in drift.detail


def test_an_open_position_the_venue_does_not_hold_is_drift():
    e = clean()
    e.posts.pop()
    e.positions[0] = replace(e.positions[0], status="open")
    e.reported_budgets, e.last_budget_events = {}, {}
    assert [f.check for f in checks.check_all(e)] == ["venue_drift"]


def test_every_violation_check_has_a_name_in_the_summary():
    e = clean()
    e.quiescent_after_s = None
    e.unpublished_outbox["ledger"] = 1
    names = {f.check for f in checks.check_all(e)}
    assert names <= set(checks.CHECK_NAMES)
