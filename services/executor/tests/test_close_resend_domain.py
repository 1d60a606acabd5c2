"""A close the venue certainly did not execute is sent again until it is executed or its time is up. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from test_executor_domain import NOW, POLICY, fill, intent_message, resolution, submitted

from egis_common import contracts as c
from egis_venues.port import Rejected, Unknown
from executor import domain as decisions
from executor.domain import IntentStatus as S

BUSY = Rejected("http_429", "Too many requests.", not_processed=True)
UNAVAILABLE = Rejected("paper_venue_unavailable", "nothing was placed", not_processed=True)


def close() -> decisions.Intent:
    return submitted(intent_message(kind=c.IntentKind.CLOSE, size=None))


def test_a_close_the_venue_did_not_process_waits_to_be_sent_again_and_the_ledger_hears_nothing():
    intent = close()
    decision = decisions.settle(intent, UNAVAILABLE, NOW, POLICY)
    assert decision.intent.status is S.RESEND_DUE and decision.messages == () and decision.pending is None
    assert decision.intent.resend_at == NOW + timedelta(seconds=2)  # the backoff after the first attempt
    assert "paper_venue_unavailable" in decision.intent.detail


def test_the_venues_retry_after_is_honoured():
    decision = decisions.settle(close(), replace(BUSY, retry_after_s=7.5), NOW, POLICY)
    assert decision.intent.resend_at == NOW + timedelta(seconds=7.5)


def test_an_open_the_venue_did_not_process_is_rejected_at_once_a_late_entry_being_another_trade():
    decision = decisions.settle(submitted(), UNAVAILABLE, NOW, POLICY)
    assert decision.intent.status is S.REJECTED
    (message,) = decision.messages
    assert isinstance(message, c.OrderRejected) and message.exchange_code == "paper_venue_unavailable"


def test_a_close_refused_on_its_merits_is_rejected_at_once():
    decision = decisions.settle(close(), Rejected("-2022", "ReduceOnly Order is rejected."), NOW, POLICY)
    assert decision.intent.status is S.REJECTED and decision.messages[0].exchange_code == "-2022"


def test_a_close_whose_time_is_up_is_rejected_with_the_venues_last_reason():
    intent = close()
    late = intent.first_sent_at + timedelta(seconds=299)  # the next try, 2 s on, would be past 300 s
    decision = decisions.settle(intent, BUSY, late, POLICY)
    assert decision.intent.status is S.REJECTED and decision.messages[0].exchange_code == "http_429"
    asked_too_late = decisions.settle(intent, replace(BUSY, retry_after_s=301), NOW, POLICY)
    assert asked_too_late.intent.status is S.REJECTED


def test_a_close_sent_again_is_the_same_order_recorded_again_before_the_call():
    waiting = decisions.settle(close(), UNAVAILABLE, NOW, POLICY).intent
    again = decisions.resending(waiting).intent
    assert again.status is S.SUBMITTING and again.send_attempts == 2 and again.resend_at is None
    assert again.first_sent_at == waiting.first_sent_at
    order = decisions.resent_order(again)
    assert (order.client_order_id, order.quantity, order.reduce_only) == (
        waiting.client_order_id,
        waiting.order_qty,
        True,
    )
    assert decisions.resending(again) is decisions.NOTHING  # picked once
    later = NOW + timedelta(seconds=3)
    assert decisions.settle(again, BUSY, later, POLICY).intent.resend_at == later + timedelta(seconds=4)
    filled = decisions.settle(again, fill(), later, POLICY)
    assert filled.intent.status is S.FILLED and isinstance(filled.messages[0], c.OrderFilled)


def test_a_close_the_venue_never_got_after_its_window_is_sent_again_and_the_resolution_recorded():
    pending = decisions.settle(close(), Unknown("http_500"), NOW, POLICY).intent
    message = resolution(pending, "not_found_after_window", window_s="60.0")
    decision = decisions.resolved(pending, True, message, NOW + timedelta(seconds=61), POLICY)
    assert decision.intent.status is S.RESEND_DUE and decision.messages == ()
    assert decision.resolved.resolution == "not_found_after_window"
    assert decision.intent.resend_at == NOW + timedelta(seconds=63)


def test_a_close_the_venue_never_got_is_rejected_by_the_executor_once_its_time_is_up():
    """The reconciler left the close's reservation to the executor: the ledger hears the end from here."""
    pending = decisions.settle(close(), Unknown("http_500"), NOW, POLICY).intent
    message = resolution(pending, "not_found_after_window")
    decision = decisions.resolved(pending, True, message, NOW + timedelta(seconds=400), POLICY)
    assert decision.intent.status is S.REJECTED and decision.intent.exchange_code == "not_found_after_window"
    (rejected,) = decision.messages
    assert isinstance(rejected, c.OrderRejected) and rejected.position_id == pending.position_id


def test_an_open_the_venue_never_got_is_rejected_as_before_the_reconciler_having_released_it():
    pending = decisions.settle(submitted(), Unknown("http_500"), NOW, POLICY).intent
    decision = decisions.resolved(pending, True, resolution(pending, "not_found_after_window"), NOW, POLICY)
    assert decision.intent.status is S.REJECTED and decision.messages == ()


OUTCOMES = st.one_of(
    st.builds(lambda after: replace(BUSY, retry_after_s=after), st.none() | st.floats(0, 120)),
    st.just(UNAVAILABLE),
    st.just(Rejected("-2019", "Margin is insufficient.")),
    st.just(Unknown("timeout")),
    st.just(fill()),
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(list(c.IntentKind)), steps=st.lists(st.tuples(OUTCOMES, st.floats(0, 90)), max_size=20))
def test_an_order_ends_at_most_once_and_only_a_close_in_its_time_waits_to_be_sent_again(kind, steps):
    """Whatever the venue answers, and whenever: one fill or one rejection at most reaches the ledger; a close
    waits `resend_due` only within its time; an open never waits; a merit refusal ends it at once."""
    intent = submitted(intent_message(kind=kind, size=None if kind is c.IntentKind.CLOSE else "10"))
    deadline, now, ended = intent.first_sent_at + timedelta(seconds=POLICY.for_seconds), NOW, []
    for outcome, elapsed_s in steps:
        now += timedelta(seconds=elapsed_s)
        if intent.status is S.RESEND_DUE:
            now = max(now, intent.resend_at)
            intent = decisions.resending(intent).intent
        elif intent.status is S.PENDING_RECONCILIATION:  # the reconciler: no such order after its window
            decision = decisions.resolved(intent, True, resolution(intent, "not_found_after_window"), now, POLICY)
            ended += [m for m in decision.messages if isinstance(m, (c.OrderFilled, c.OrderRejected))]
            if kind is c.IntentKind.OPEN:
                ended.append("the reconciler released the open's reservation")
            intent = decision.intent
        if intent.status is not S.SUBMITTING:
            break
        decision = decisions.settle(intent, outcome, now, POLICY)
        intent = decision.intent
        ended += [m for m in decision.messages if isinstance(m, (c.OrderFilled, c.OrderRejected))]
        if intent.status is S.RESEND_DUE:
            assert kind is c.IntentKind.CLOSE and decision.messages == ()
            assert now <= intent.resend_at <= deadline
        if isinstance(outcome, Rejected) and not outcome.not_processed:
            assert intent.status is S.REJECTED
    assert len(ended) <= 1
    assert (len(ended) == 1) == (intent.status in (S.FILLED, S.REJECTED))
