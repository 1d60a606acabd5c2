"""Pending orders: what the exchange's answer to a look-up by client order id means. Pure.

An order whose outcome was unknown is never guessed at. Only a definitive
answer settles it: a rejection, or "not found" once the exchange's window for
an order to show up has passed. Missing reports do not mean the order is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any
from uuid import UUID

from egis_common import contracts as c
from egis_venues.port import Filled, LookupOutcome, NotFound, Rejected, Unknown
from tenacity import RetryCallState, wait_random_exponential

AUTO = "auto"  # resolved_by of the reconciler's own periodic look-ups


class Resolution(str, Enum):
    FOUND_FILLED = "found_filled"
    REJECTED_BY_EXCHANGE = "rejected_by_exchange"
    NOT_FOUND_AFTER_WINDOW = "not_found_after_window"
    NOT_FOUND_WITHIN_WINDOW = "not_found_within_window"
    STILL_UNKNOWN = "still_unknown"


@dataclass(frozen=True)
class PendingOrder:
    intent_id: UUID
    bot_id: UUID
    position_id: UUID
    intent: str
    symbol: str
    client_order_id: str
    exchange: str
    exchange_account: str
    cause: str
    pending_since: datetime
    attempts: int = 0  # look-ups the periodic job has begun
    last_lookup: Mapping[str, Any] | None = None  # what the venue said last time, while it settled nothing


@dataclass(frozen=True)
class NotFoundWindows:
    """How long an order may take to show up in a look-up on each venue: "not found" means absent only after it."""

    remote: timedelta  # a venue across the network (Binance)
    paper: timedelta  # the paper venue, whose orders are rows in the executor's own database

    def of(self, exchange: str) -> timedelta:
        return self.paper if exchange == c.ExchangeName.PAPER.value else self.remote


def next_look_up(order: PendingOrder, now: datetime, backoff: timedelta, window: timedelta) -> datetime:
    """The backoff's next look-up, or the first moment after the order's window ends when that comes sooner:
    a "not found" settles the order only then, and it should not wait a whole backoff longer."""
    after_window = order.pending_since + window + WINDOW_GRACE
    return min(now + backoff, after_window) if after_window > now else now + backoff


# A look-up just after the window, not on its edge.
WINDOW_GRACE = timedelta(seconds=1)


# The resolutions that settle a pending order; the others leave it pending, to be looked up again.
SETTLING = frozenset({Resolution.FOUND_FILLED, Resolution.REJECTED_BY_EXCHANGE, Resolution.NOT_FOUND_AFTER_WINDOW})


@dataclass(frozen=True)
class Decision:
    resolution: Resolution
    evidence: dict[str, Any]
    # The ledger command that settles it (ApplyFoundFill or ReleaseReservation); None while it stays pending,
    # and for a close the venue never got, which the executor sends again (it tells the ledger how that ends).
    command: c.ApplyFoundFill | c.ReleaseReservation | None = None

    @property
    def settles(self) -> bool:
        return self.resolution in SETTLING


def decide(pending: PendingOrder, outcome: LookupOutcome, now: datetime, window: timedelta) -> Decision:
    evidence = {"client_order_id": pending.client_order_id, "looked_up_at": now.isoformat(),
                "pending_for_s": str((now - pending.pending_since).total_seconds()), "cause": pending.cause}
    if isinstance(outcome, Filled):
        evidence |= _fill_evidence(outcome)
        return Decision(Resolution.FOUND_FILLED, evidence, _apply_fill(pending, outcome, evidence))
    if isinstance(outcome, Rejected):
        evidence |= {"exchange_code": outcome.code, "exchange_message": outcome.message}
        return Decision(Resolution.REJECTED_BY_EXCHANGE, evidence, _release(pending, "rejected_by_exchange", evidence))
    if isinstance(outcome, NotFound) and now - pending.pending_since >= window:
        evidence["window_s"] = str(window.total_seconds())
        if pending.intent == c.IntentKind.CLOSE.value:  # sent again by the executor, the reservation still held
            return Decision(Resolution.NOT_FOUND_AFTER_WINDOW, evidence)
        return Decision(Resolution.NOT_FOUND_AFTER_WINDOW, evidence,
                        _release(pending, "not_found_after_window", evidence))
    if isinstance(outcome, NotFound):
        return Decision(Resolution.NOT_FOUND_WITHIN_WINDOW, {**evidence, "window_s": str(window.total_seconds())})
    assert isinstance(outcome, Unknown), outcome
    return Decision(Resolution.STILL_UNKNOWN, {**evidence, "lookup_cause": outcome.cause})


def operator(operator_id: str) -> str:
    """resolved_by of a confirmed resolve-pending."""
    return f"operator:{operator_id}"


def recorded(pending: PendingOrder, decision: Decision, resolved_by: str, at: datetime) -> c.RecordResolution:
    """What the executor is told about a settlement it did not make itself."""
    found = decision.command if isinstance(decision.command, c.ApplyFoundFill) else None
    fill = None if found is None else c.FoundFill(
        exchange_order_id=found.exchange_order_id, executed_qty=found.executed_qty, avg_price=found.avg_price,
        fee_usd=found.fee_usd, realised_pnl_usd=found.realised_pnl_usd, filled_at=found.filled_at)
    return c.RecordResolution(intent_id=pending.intent_id, bot_id=pending.bot_id,
                              resolution=decision.resolution.value, resolved_by=resolved_by, resolved_at=at,
                              fill=fill, evidence=decision.evidence)


def retry_wait(initial_s: float, max_s: float) -> Callable[[int], timedelta]:
    """The wait after a pending order's n-th look-up: random within a window that doubles up to `max_s`.

    Full jitter, so that the orders one venue outage left pending (created together) are not asked about
    together again; never less than `initial_s`.
    """
    strategy = wait_random_exponential(multiplier=initial_s, max=max_s, min=initial_s)

    def after(attempt: int) -> timedelta:
        state = RetryCallState(None, None, (), {})
        state.attempt_number = attempt
        return timedelta(seconds=strategy(state))

    return after


def _fill_evidence(fill: Filled) -> dict[str, Any]:
    return {"exchange_order_id": fill.exchange_order_id, "executed_qty": str(fill.executed_qty),
            "avg_price": str(fill.avg_price), "fee_usd": str(fill.fee_usd), "filled_at": fill.filled_at.isoformat()}


def _apply_fill(pending: PendingOrder, fill: Filled, evidence: dict[str, Any]) -> c.ApplyFoundFill:
    return c.ApplyFoundFill(
        bot_id=pending.bot_id, intent_id=pending.intent_id, position_id=pending.position_id,
        intent=c.IntentKind(pending.intent), client_order_id=pending.client_order_id,
        exchange_order_id=fill.exchange_order_id, executed_qty=fill.executed_qty, avg_price=fill.avg_price,
        fee_usd=fill.fee_usd, realised_pnl_usd=fill.realised_pnl_usd, filled_at=fill.filled_at, evidence=evidence,
    )


def _release(pending: PendingOrder, reason: str, evidence: dict[str, Any]) -> c.ReleaseReservation:
    return c.ReleaseReservation(bot_id=pending.bot_id, intent_id=pending.intent_id, reason=reason, evidence=evidence)


AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_1m", timedelta(minutes=1)), ("1m_to_10m", timedelta(minutes=10)), ("10m_to_1h", timedelta(hours=1)),
)


def age_bucket(pending_since: datetime, now: datetime) -> str:
    age = now - pending_since
    return next((name for name, limit in AGE_BUCKETS if age < limit), "over_1h")


def overdue(pending_since: datetime, now: datetime, escalate_after: timedelta) -> bool:
    """Unresolved for so long that a person must look: the venue's evidence has not settled it."""
    return now - pending_since >= escalate_after


@dataclass(frozen=True)
class Backlog:
    count: int
    oldest_age_s: float  # 0 when there is none
    escalated: int
    by_age: dict[str, int]


def backlog(pending_since: Sequence[datetime], now: datetime, escalate_after: timedelta) -> Backlog:
    """The unresolved pending orders by their `pending_since`: how many, how old, how many overdue."""
    by_age = {name: 0 for name, _ in AGE_BUCKETS} | {"over_1h": 0}
    for since in pending_since:
        by_age[age_bucket(since, now)] += 1
    oldest = max(((now - since).total_seconds() for since in pending_since), default=0.0)
    escalated = sum(overdue(since, now, escalate_after) for since in pending_since)
    return Backlog(len(pending_since), max(oldest, 0.0), escalated, by_age)
