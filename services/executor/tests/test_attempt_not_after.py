"""Each attempt's not_after: recorded with the attempt, carried by its order and by its pending record. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from egis_common import contracts as c
from egis_venues.port import Unknown
from executor import domain
from executor.domain import Intent
from executor.domain import IntentStatus as S

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=10)


def waiting_for_reservation(kind: c.IntentKind = c.IntentKind.OPEN) -> Intent:
    return Intent(
        intent_id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        bot_id=uuid.uuid4(),
        kind=kind,
        side=c.Side.LONG,
        symbol="ETHUSDT",
        exchange=c.ExchangeName.PAPER,
        exchange_account="acct",
        status=S.PREFLIGHT_REQUESTED,
        requested_size_usd=Decimal("10"),
    )


def attempted(intent: Intent, not_after: datetime) -> tuple[Intent, object]:
    answer = c.BudgetReserved(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        position_id=uuid.uuid4(),
        intent=intent.kind,
        side=c.Side.LONG,
        symbol=intent.symbol,
        reserved_usd=Decimal("10"),
        close_qty=Decimal("0.01") if intent.kind is c.IntentKind.CLOSE else None,
    )
    order = domain.market_order(intent, Decimal("0.003"))
    recorded = domain.submitting(intent, answer, order, NOW, not_after).intent
    return recorded, domain.stamped(order, recorded)


def test_the_order_sent_and_an_unknown_outcomes_pending_record_carry_the_attempts_not_after():
    intent, order = attempted(waiting_for_reservation(), NOW + TIMEOUT)
    assert (intent.status, intent.not_after, order.not_after) == (S.SUBMITTING, NOW + TIMEOUT, NOW + TIMEOUT)
    unknown = domain.settle(intent, Unknown("timeout"), NOW + TIMEOUT, domain.ResendPolicy(300, lambda n: 1.0))
    [message] = unknown.messages
    assert isinstance(message, c.OrderPendingReconciliation) and message.not_after == NOW + TIMEOUT


def test_an_attempt_left_submitting_by_a_crash_is_swept_with_the_not_after_it_was_sent_with():
    intent, _order = attempted(waiting_for_reservation(), NOW + TIMEOUT)
    for decision in (domain.pending(intent, domain.STALE_SUBMISSION, None), domain.interrupted(intent)):
        [message] = decision.messages
        assert (message.cause in (domain.STALE_SUBMISSION, domain.INTERRUPTED), message.not_after) == (
            True,
            NOW + TIMEOUT,
        )


def test_a_close_sent_again_is_a_new_attempt_with_a_new_not_after():
    intent, _order = attempted(waiting_for_reservation(c.IntentKind.CLOSE), NOW + TIMEOUT)
    waiting = intent.moved_to(S.RESEND_DUE, resend_at=NOW + timedelta(seconds=2))
    later = NOW + timedelta(seconds=30)
    again = domain.resending(waiting, later).intent
    assert (again.status, again.not_after, domain.resent_order(again).not_after) == (S.SUBMITTING, later, later)
