"""The executor's rules: the intent state machine and what each answer or outcome turns it into.

Pure: no I/O, no async. Each function takes an intent (and what arrived) and
returns a `Decision`: the intent's new state, the messages that announce it
and, for an unknown outcome, the pending-reconciliation record. The flow
persists all three in one transaction. Each invariant here is also a database
constraint (migrations/versions/0002_executor.py).

    received -> preflight_requested -> reserved -> submitting -> filled | rejected | pending_reconciliation
    received | preflight_requested -> skipped (the ledger's reason, or the executor's own)
    reserved -> rejected (nothing could be sent: no mark price, unknown symbol)
    pending_reconciliation -> filled | rejected (the reconciler's resolution: RecordResolution)
    submitting | pending_reconciliation -> resend_due -> submitting (a close the venue certainly did not execute)

`reserved` is the instant the ledger's BudgetReserved arrives; it is never a
resting state: the same transaction records the attempt and moves on to `submitting`.

A close whose order the venue certainly did not execute (it said it never processed it, or the reconciler
found no order with its client order id after the venue's window) waits in `resend_due` and is sent again,
same client order id, until it is executed or `ResendPolicy.for_seconds` after its first attempt; then it is
rejected as an open is at once. Reducing exposure is what the user asked, and a reduce-only order cannot
flip a position; a late open would be a different trade.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from egis_common import contracts as c
from egis_common.contracts import ExchangeName, IntentKind, Side
from egis_venues.port import OrderSide


class IntentStatus(str, Enum):
    RECEIVED = "received"
    PREFLIGHT_REQUESTED = "preflight_requested"
    RESERVED = "reserved"
    SUBMITTING = "submitting"
    FILLED = "filled"
    REJECTED = "rejected"
    PENDING_RECONCILIATION = "pending_reconciliation"
    RESEND_DUE = "resend_due"
    SKIPPED = "skipped"


S = IntentStatus
TRANSITIONS: dict[IntentStatus, frozenset[IntentStatus]] = {
    S.RECEIVED: frozenset({S.PREFLIGHT_REQUESTED, S.SKIPPED}),
    S.PREFLIGHT_REQUESTED: frozenset({S.RESERVED, S.SKIPPED}),
    S.RESERVED: frozenset({S.SUBMITTING, S.REJECTED}),
    S.SUBMITTING: frozenset({S.FILLED, S.REJECTED, S.PENDING_RECONCILIATION, S.RESEND_DUE}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
    S.PENDING_RECONCILIATION: frozenset({S.FILLED, S.REJECTED, S.RESEND_DUE}),
    S.RESEND_DUE: frozenset({S.SUBMITTING}),
    S.SKIPPED: frozenset(),
}
# The intermediate states: an intent in one is on its way, and something must move it on (nothing waits forever).
IN_FLIGHT = (S.PREFLIGHT_REQUESTED, S.RESERVED, S.SUBMITTING, S.PENDING_RECONCILIATION, S.RESEND_DUE)
INTERRUPTED = "interrupted_during_submission"
RECORDING_FAILED = "recording_failed"
STALE_SUBMISSION = "stale_submission"


class IllegalTransition(Exception):
    pass


@dataclass(frozen=True)
class ResendPolicy:
    """How a close the venue did not execute is sent again: for how long after its first attempt, and how long
    to wait after its n-th attempt when the venue named no time (capped exponential with jitter)."""

    for_seconds: float
    backoff_seconds: Callable[[int], float]

    def resend_at(self, intent: Intent, now: datetime, retry_after_s: float | None) -> datetime | None:
        """When to send `intent` again, or None when that would be past its time (it is rejected then)."""
        assert intent.first_sent_at is not None
        wait_s = retry_after_s if retry_after_s is not None else self.backoff_seconds(intent.send_attempts)
        at = now + timedelta(seconds=wait_s)
        return at if at <= intent.first_sent_at + timedelta(seconds=self.for_seconds) else None


@dataclass(frozen=True)
class Intent:
    intent_id: UUID
    signal_id: UUID
    bot_id: UUID
    kind: IntentKind
    side: Side | None  # None for a close until the ledger's answer names the position's side
    symbol: str
    exchange: ExchangeName
    exchange_account: str
    status: IntentStatus
    requested_size_usd: Decimal | None = None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    # Percentages from the entry, for a stop without an explicit price: priced once the fill is known.
    take_profit_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None
    position_id: UUID | None = None
    client_order_id: str | None = None
    order_qty: Decimal | None = None
    skip_reason: str | None = None
    exchange_code: str | None = None
    detail: str = ""
    exchange_order_id: str | None = None
    executed_qty: Decimal | None = None
    avg_price: Decimal | None = None
    fee_usd: Decimal | None = None
    realised_pnl_usd: Decimal | None = None
    filled_at: datetime | None = None
    send_attempts: int = 0  # times the order was sent (moved to `submitting`)
    first_sent_at: datetime | None = None  # when it was first sent: a close is sent again until a while after
    resend_at: datetime | None = None  # `resend_due`: when it is sent again

    def moved_to(self, status: IntentStatus, **changes: Any) -> Intent:
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"intent {self.intent_id}: {self.status.value} -> {status.value}")
        return replace(self, status=status, **changes)

    @property
    def order_side(self) -> OrderSide:
        """Opening a long buys; closing it sells. A short is the mirror image."""
        buys = (self.side is Side.LONG) == (self.kind is IntentKind.OPEN)
        return OrderSide.BUY if buys else OrderSide.SELL


# A venue's algo order in one of these has ended: nothing of it is left to trigger.
ALGO_ENDED = frozenset({"FINISHED", "CANCELED", "REJECTED", "EXPIRED"})


@dataclass(frozen=True)
class PendingRecord:
    """An order whose outcome is unknown: what the reconciler needs to look it up."""

    intent_id: UUID
    client_order_id: str
    cause: str
    exchange_response: dict[str, Any] | None


class Resolution(str, Enum):
    """The reconciler's resolutions that settle a pending order (RecordResolution.resolution)."""

    FOUND_FILLED = "found_filled"
    REJECTED_BY_EXCHANGE = "rejected_by_exchange"
    NOT_FOUND_AFTER_WINDOW = "not_found_after_window"


# Where each resolution takes the intent: the order exists and filled, or it never will.
RESOLVED_TO: dict[str, IntentStatus] = {
    Resolution.FOUND_FILLED.value: S.FILLED,
    Resolution.REJECTED_BY_EXCHANGE.value: S.REJECTED,
    Resolution.NOT_FOUND_AFTER_WINDOW.value: S.REJECTED,
}


@dataclass(frozen=True)
class ResolutionRecord:
    """How and when a pending order was settled, kept on its pending record; the first one stands."""

    intent_id: UUID
    resolution: str
    resolved_by: str  # "auto", or "operator:<id>"
    resolved_at: datetime
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    intent: Intent | None = None  # the new state; None when nothing changes
    messages: tuple[c.Message, ...] = ()
    pending: PendingRecord | None = None
    resolved: ResolutionRecord | None = None
    note: str = ""


NOTHING = Decision()


class SkipReason(str, Enum):
    """Why an intent never reached an exchange: the ledger's preflight reasons, and the executor's own."""

    EXCHANGE_UNAVAILABLE = "exchange_unavailable"
    INVALID_INTENT = "invalid_intent"


def skip_reasons() -> frozenset[str]:
    return frozenset(r.value for r in SkipReason) | frozenset(r.value for r in c.PreflightRejectReason)
