"""The executor's rules: the intent state machine and what each answer or outcome turns it into.

Pure: no I/O, no async. Each function takes an intent (and what arrived) and
returns a `Decision`: the intent's new state, the messages that announce it
and, for an unknown outcome, the pending-reconciliation record. The handlers
persist all three in one transaction. Each invariant here is also a database
constraint (migrations/versions/0002_executor.py).

Every decision is safe to take again with the same input: an intent already
past the step it decides gets `NOTHING`, which is how a redelivered message,
or the ledger's repeated answer, changes nothing.

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

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, Inexact, localcontext
from enum import Enum
from typing import Any, cast
from uuid import UUID

from egis_common import contracts as c
from egis_common.contracts import ExchangeName, IntentKind, Side
from egis_common.ids import OrderPurpose, client_order_id
from egis_venues.port import (
    Filled,
    MarketOrder,
    OrderOutcome,
    OrderSide,
    Rejected,
    StopOrder,
    StopPlaced,
    SymbolRules,
    Unknown,
)


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
    # The latest attempt's: when the executor stops waiting for the exchange call. Its order carries it, and so
    # does its pending record: the paper venue books the order only before it, so a look-up after it is exact.
    not_after: datetime | None = None

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


# An intent its bot, as the bots feed states it, does not back: refused before any reservation, in the
# ledger's words for the same refusals.
REFUSALS = (
    c.PreflightRejectReason.UNKNOWN_BOT,
    c.PreflightRejectReason.BOT_DELETED,
    c.PreflightRejectReason.ACCOUNT_MISMATCH,
)


def skip_reasons() -> frozenset[str]:
    return frozenset(r.value for r in SkipReason) | frozenset(r.value for r in c.PreflightRejectReason)


def is_refusal(decision: Decision) -> bool:
    """Of `receive`'s decisions, a refusal (the ledger's answers skip with the same words: not for those)."""
    intent = decision.intent
    return intent is not None and intent.status is S.SKIPPED and intent.skip_reason in {r.value for r in REFUSALS}


@dataclass(frozen=True)
class Bot:
    """A bot as the bots topic states it: where its orders go."""

    bot_id: UUID
    version: int
    exchange: ExchangeName
    exchange_account: str
    deleted: bool


# --- what each arriving message or exchange outcome does to an intent --------------------------------


def refusal(message: c.OrderIntent, bot: Bot | None) -> tuple[c.PreflightRejectReason, str] | None:
    """Why `bot` does not back this intent, or None when it does. An intent's exchange and account are a claim
    to check against its bot, never a choice: a writer of intents must not trade on another bot's account."""
    if bot is None:
        return c.PreflightRejectReason.UNKNOWN_BOT, f"no bot {message.bot_id} on the bots topic"
    if bot.deleted:
        return c.PreflightRejectReason.BOT_DELETED, f"bot version {bot.version} is deleted"
    if (message.exchange, message.exchange_account) != (bot.exchange, bot.exchange_account):
        return (
            c.PreflightRejectReason.ACCOUNT_MISMATCH,
            f"the intent names {message.exchange.value}/{message.exchange_account}; "
            f"bot version {bot.version} trades on {bot.exchange.value}/{bot.exchange_account}"[:1000],
        )
    return None


def receive(message: c.OrderIntent, exchanges: frozenset[c.ExchangeName], bot: Bot | None) -> Decision:
    """A new intent: ask the ledger to reserve, unless its bot does not back it or it can never be executed here.

    The exchange and the account are the bot's. A refused intent is recorded with what it claimed.
    """
    intent = Intent(
        intent_id=message.intent_id,
        signal_id=message.signal_id,
        bot_id=message.bot_id,
        kind=message.intent,
        side=message.side,
        symbol=message.symbol,
        exchange=message.exchange,
        exchange_account=message.exchange_account,
        status=S.RECEIVED,
        requested_size_usd=message.requested_size_usd,
        take_profit_price=message.take_profit_price,
        stop_loss_price=message.stop_loss_price,
        take_profit_pct=message.take_profit_pct,
        stop_loss_pct=message.stop_loss_pct,
    )
    refused = refusal(message, bot)
    if refused is not None:
        reason, detail = refused
        return Decision(intent.moved_to(S.SKIPPED, skip_reason=reason.value, detail=detail))
    assert bot is not None
    intent = replace(intent, exchange=bot.exchange, exchange_account=bot.exchange_account)
    if intent.exchange not in exchanges:
        detail = f"no {intent.exchange.value} adapter is configured"
        return Decision(intent.moved_to(S.SKIPPED, skip_reason=SkipReason.EXCHANGE_UNAVAILABLE.value, detail=detail))
    if message.intent is IntentKind.OPEN and message.requested_size_usd is None:
        detail = "an open intent needs requested_size_usd"
        return Decision(intent.moved_to(S.SKIPPED, skip_reason=SkipReason.INVALID_INTENT.value, detail=detail))
    return Decision(intent.moved_to(S.PREFLIGHT_REQUESTED), (reservation(intent),))


def reservation(intent: Intent) -> c.ReserveBudget:
    """The reservation an intent asks the ledger for: the same command whenever it asks, under a new message id."""
    return c.ReserveBudget(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        intent=intent.kind,
        side=intent.side,
        symbol=intent.symbol,
        requested_size_usd=intent.requested_size_usd,
        exchange_account=intent.exchange_account,
    )


def ask_again(intent: Intent) -> Decision:
    """No answer came: the command or its answer was lost, or the ledger still holds the reservation back.

    The ledger answers an intent id it has answered before with the answer it stored, and one it still holds
    back not at all, so asking again is safe; the state does not change.
    """
    if intent.status is not S.PREFLIGHT_REQUESTED:
        return NOTHING
    return Decision(messages=(reservation(intent),), note="reservation asked again")


def preflight_rejected(intent: Intent, answer: c.PreflightRejected) -> Decision:
    if intent.status is not S.PREFLIGHT_REQUESTED:
        return NOTHING
    return Decision(intent.moved_to(S.SKIPPED, skip_reason=answer.reason.value, detail=answer.detail))


def answered(intent: Intent, answer: c.Message) -> Decision:
    """A ledger's answer that leads to no exchange call: a refusal, a repeat, or an interrupted submission."""
    if isinstance(answer, c.PreflightRejected):
        return preflight_rejected(intent, answer)
    if intent.status is S.SUBMITTING:  # we may have called the exchange before a crash: never again
        return interrupted(intent)
    return NOTHING


def order_quantity(
    intent: Intent, answer: c.BudgetReserved, rules: SymbolRules | None, mark: Decimal | None
) -> Decimal:
    """An open buys what the requested size is worth at the mark, rounded down; a close, what the ledger holds."""
    if intent.kind is IntentKind.CLOSE:
        return answer.close_qty or Decimal("0")
    assert rules is not None and mark is not None and intent.requested_size_usd is not None
    return rules.quantity_for(intent.requested_size_usd, mark)


def market_order(intent: Intent, quantity: Decimal) -> MarketOrder:
    return MarketOrder(
        account=intent.exchange_account,
        symbol=intent.symbol,
        side=intent.order_side,
        quantity=quantity,
        client_order_id=client_order_id(intent.intent_id, OrderPurpose.ENTRY),
        reduce_only=intent.kind is IntentKind.CLOSE,  # a close can never open the opposite side
        not_after=intent.not_after,
    )


Quote = tuple[SymbolRules, Decimal] | Rejected  # a symbol's rules and mark price at the venue, or why none came


@dataclass(frozen=True)
class Attempt:
    """An order about to be sent for an intent, or why none can be."""

    intent: Intent
    answer: c.BudgetReserved | None  # None: a close sent again (no answer of the ledger led to this attempt)
    order: MarketOrder | Rejected  # Rejected: nothing can be sent
    rules: SymbolRules | None = None


def plan(intent: Intent, answer: c.BudgetReserved, quote: Quote | None) -> Attempt:
    """The order a reservation leads to. An open buys what its requested size is worth at the mark price,
    rounded down to the step size; a close sells (or buys back) the quantity the ledger holds, on the side
    the ledger names, and needs no quote. When the market data could not be had (`quote` is a refusal),
    nothing is sent: that is a definitive refusal, and the reservation is released (`not_placed`).
    """
    if intent.kind is IntentKind.CLOSE:
        intent = replace(intent, side=answer.side)  # the ledger names the position's side
        return Attempt(intent, answer, market_order(intent, order_quantity(intent, answer, None, None)))
    if isinstance(quote, Rejected):
        return Attempt(intent, answer, quote)
    assert quote is not None
    rules, mark = quote
    return Attempt(intent, answer, market_order(intent, order_quantity(intent, answer, rules, mark)), rules)


def submitting(
    intent: Intent, answer: c.BudgetReserved, order: MarketOrder, now: datetime, not_after: datetime | None = None
) -> Decision:
    """The attempt, durably recorded before the exchange is called; `not_after`: now plus the call's timeout
    (None: the venue is told no time, and its "not found" is never final)."""
    if intent.status is not S.PREFLIGHT_REQUESTED:
        return NOTHING
    reserved = intent.moved_to(S.RESERVED, position_id=answer.position_id, side=answer.side)
    return Decision(
        reserved.moved_to(
            S.SUBMITTING,
            client_order_id=order.client_order_id,
            order_qty=order.quantity,
            send_attempts=1,
            first_sent_at=now,
            not_after=not_after,
        )
    )


def stamped(order: MarketOrder, intent: Intent) -> MarketOrder:
    """The order as sent: with the `not_after` its attempt was recorded with, and no other."""
    return replace(order, not_after=intent.not_after)


def resending(intent: Intent, not_after: datetime | None = None) -> Decision:
    """A close due to be sent again: the same order, recorded as `submitting` again before the call."""
    if intent.status is not S.RESEND_DUE:
        return NOTHING
    return Decision(
        intent.moved_to(S.SUBMITTING, send_attempts=intent.send_attempts + 1, resend_at=None, not_after=not_after)
    )


def resent_order(intent: Intent) -> MarketOrder:
    """The order a close sends again: its client order id and quantity as first recorded."""
    assert intent.order_qty is not None and intent.client_order_id is not None
    order = market_order(intent, intent.order_qty)
    assert order.client_order_id == intent.client_order_id
    return order


def not_placed(intent: Intent, answer: c.BudgetReserved, refusal: Rejected) -> Decision:
    """Nothing was sent (no mark price, unknown symbol): a definitive refusal that releases the reservation."""
    if intent.status is not S.PREFLIGHT_REQUESTED:
        return NOTHING
    return _rejected(intent.moved_to(S.RESERVED, position_id=answer.position_id, side=answer.side), refusal)


def settle(intent: Intent, outcome: OrderOutcome, now: datetime, policy: ResendPolicy) -> Decision:
    """The exchange's answer to the order recorded as `submitting`."""
    if intent.status is not S.SUBMITTING:
        return NOTHING
    if isinstance(outcome, Unknown):
        return pending(intent, outcome.cause, describe(outcome))
    if isinstance(outcome, Rejected) and outcome.not_processed:
        return not_executed(intent, outcome, now, policy)
    if isinstance(outcome, Rejected):
        return _rejected(intent, outcome)
    if outcome.executed_qty == 0:  # expired without a fill: nothing exists to hold
        return _rejected(intent, Rejected("expired_unfilled", "the market order expired without a fill", outcome.raw))
    return _filled(intent, outcome)


def not_executed(intent: Intent, refusal: Rejected, now: datetime, policy: ResendPolicy) -> Decision:
    """The venue certainly did not execute the order. A close is sent again, after the venue's Retry-After or a
    backoff, while its time lasts; an open, or a close out of time, is rejected with the venue's last reason.

    Nothing goes out while a close waits: the ledger keeps its position `closing`.
    """
    resend_at = policy.resend_at(intent, now, refusal.retry_after_s) if intent.kind is IntentKind.CLOSE else None
    if resend_at is None:
        return _rejected(intent, refusal)
    detail = f"attempt {intent.send_attempts} not executed ({refusal.code}: {refusal.message}); sent again"[:1000]
    return Decision(intent.moved_to(S.RESEND_DUE, resend_at=resend_at, detail=detail), note="close to send again")


def _filled(intent: Intent, fill: Filled) -> Decision:
    filled = intent.moved_to(
        S.FILLED,
        exchange_order_id=fill.exchange_order_id,
        executed_qty=fill.executed_qty,
        avg_price=fill.avg_price,
        fee_usd=fill.fee_usd,
        realised_pnl_usd=fill.realised_pnl_usd,
        filled_at=fill.filled_at,
    )
    message = c.OrderFilled(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        position_id=intent.position_id,
        intent=intent.kind,
        symbol=intent.symbol,
        side=intent.side,
        client_order_id=intent.client_order_id,
        exchange_order_id=fill.exchange_order_id,
        executed_qty=fill.executed_qty,
        avg_price=fill.avg_price,
        fee_usd=fill.fee_usd,
        realised_pnl_usd=fill.realised_pnl_usd,
        partial=fill.executed_qty < cast(Decimal, intent.order_qty),  # a submitted intent has its quantity
        filled_at=fill.filled_at,
    )
    return Decision(filled, (message,))


def _rejected(intent: Intent, refusal: Rejected) -> Decision:
    rejected = intent.moved_to(S.REJECTED, exchange_code=refusal.code, detail=refusal.message)
    message = c.OrderRejected(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        position_id=intent.position_id,
        intent=intent.kind,
        client_order_id=intent.client_order_id or client_order_id(intent.intent_id),
        exchange_code=refusal.code,
        reason=refusal.message,
    )
    return Decision(rejected, (message,))


def pending(intent: Intent, cause: str, response: dict[str, Any] | None) -> Decision:
    """Unknown outcome: kept for the reconciler, never retried blindly, never taken for a rejection."""
    if intent.status is not S.SUBMITTING:
        return NOTHING
    # A submitting intent has its client order id: it went out with the order.
    record = PendingRecord(intent.intent_id, cast(str, intent.client_order_id), cause, response)
    message = c.OrderPendingReconciliation(
        intent_id=intent.intent_id,
        bot_id=intent.bot_id,
        position_id=intent.position_id,
        intent=intent.kind,
        symbol=intent.symbol,
        client_order_id=intent.client_order_id,
        exchange=intent.exchange,
        exchange_account=intent.exchange_account,
        cause=cause,
        exchange_response=response,
        not_after=intent.not_after,
    )
    return Decision(intent.moved_to(S.PENDING_RECONCILIATION, detail=cause), (message,), record)


def interrupted(intent: Intent) -> Decision:
    """The ledger's answer again for an intent left `submitting`: the call may have happened. Never call again."""
    return pending(intent, INTERRUPTED, None)


def recording_failed(intent: Intent, outcome: OrderOutcome, error: str) -> Decision:
    """The exchange answered but its answer could not be committed: keep what it returned."""
    return pending(intent, RECORDING_FAILED, {**describe(outcome), "error": error[:1000]})


def resolved(
    intent: Intent | None, unresolved: bool, message: c.RecordResolution, now: datetime, policy: ResendPolicy
) -> Decision:
    """The reconciler settled a pending order: the resolution is recorded, and the intent leaves
    `pending_reconciliation`, filled as the venue reports or rejected with the resolution as its reason.

    A close the venue never got (`not_found_after_window`) is sent again instead, while its time lasts
    (`not_executed`). The reconciler leaves a close's reservation to the executor, so when it is rejected in
    the end the ledger hears it from here (OrderRejected); an open's reservation the reconciler released.

    `unresolved`: the intent has a pending record not resolved yet. Any other (an intent unknown here, a
    resolution recorded before) changes nothing: the first resolution stands. A resolution this executor
    does not know, or a fill its evidence does not state, is recorded and leaves the intent as it is.
    """
    if intent is None or not unresolved:
        return NOTHING
    record = ResolutionRecord(
        intent.intent_id, message.resolution, message.resolved_by, message.resolved_at, message.evidence
    )
    target = RESOLVED_TO.get(message.resolution)
    if intent.status is not S.PENDING_RECONCILIATION or target is None:
        return Decision(resolved=record, note=f"{message.resolution} recorded; the intent stays {intent.status.value}")
    if message.resolution == Resolution.NOT_FOUND_AFTER_WINDOW.value and intent.kind is IntentKind.CLOSE:
        absent = Rejected(message.resolution, _why_rejected(message), not_processed=True)
        return replace(not_executed(intent, absent, now, policy), resolved=record)
    if target is S.REJECTED:
        rejected = intent.moved_to(S.REJECTED, exchange_code=message.resolution, detail=_why_rejected(message))
        return Decision(rejected, resolved=record)
    fill = message.fill
    if fill is None:
        return Decision(resolved=record, note="found filled, but no fill was stated")
    filled = intent.moved_to(
        S.FILLED,
        exchange_order_id=fill.exchange_order_id,
        executed_qty=fill.executed_qty,
        avg_price=fill.avg_price,
        fee_usd=fill.fee_usd,
        realised_pnl_usd=fill.realised_pnl_usd,
        filled_at=fill.filled_at,
        detail=f"found filled, resolved by {message.resolved_by}"[:1000],
    )
    return Decision(filled, resolved=record)


def _why_rejected(message: c.RecordResolution) -> str:
    why = f"resolved by {message.resolved_by}"
    if "exchange_code" in message.evidence:
        why += f"; the exchange said {message.evidence['exchange_code']}: {message.evidence.get('exchange_message')}"
    return why[:1000]


def describe(outcome: Any) -> dict[str, Any]:
    """An exchange outcome as JSON-safe evidence (decimals and times as strings)."""
    fields = {"outcome": type(outcome).__name__, **vars(outcome)}
    evidence: dict[str, Any] = json.loads(json.dumps(fields, default=str))
    return evidence


def stop_orders(intent: Intent, rules: SymbolRules) -> list[tuple[OrderPurpose, StopOrder]]:
    """The take-profit and stop-loss of a filled open, closing the whole position from the other side."""
    if intent.kind is not IntentKind.OPEN or intent.status is not S.FILLED:
        return []
    closing = OrderSide.SELL if intent.order_side is OrderSide.BUY else OrderSide.BUY
    wanted = [
        (OrderPurpose.TAKE_PROFIT, "TAKE_PROFIT_MARKET", stop_trigger(intent, OrderPurpose.TAKE_PROFIT, rules)),
        (OrderPurpose.STOP_LOSS, "STOP_MARKET", stop_trigger(intent, OrderPurpose.STOP_LOSS, rules)),
    ]
    return [
        (
            purpose,
            StopOrder(
                intent.exchange_account, intent.symbol, closing, kind, price, client_order_id(intent.intent_id, purpose)
            ),
        )
        for purpose, kind, price in wanted
        if price is not None
    ]


def stop_trigger(intent: Intent, purpose: OrderPurpose, rules: SymbolRules) -> Decimal | None:
    """A stop's trigger: the signal's explicit price wins; else the percentage from the fill's average price."""
    take_profit = purpose is OrderPurpose.TAKE_PROFIT
    price, pct = (
        (intent.take_profit_price, intent.take_profit_pct)
        if take_profit
        else (intent.stop_loss_price, intent.stop_loss_pct)
    )
    if price is not None:
        return rules.price_on_tick(price)
    if pct is None or intent.avg_price is None:
        return None
    # A long profits above its entry and a short below it; each loses on the other side.
    above = take_profit is (intent.side is Side.LONG)
    return price_from_entry(intent.avg_price, pct, above=above, tick_size=rules.tick_size)


def price_from_entry(entry: Decimal, pct: Decimal, *, above: bool, tick_size: Decimal) -> Decimal | None:
    """`entry` moved `pct` percent up (`above`) or down, on the tick, rounded toward the entry.

    Toward the entry so that a stop is never further away than asked: a take profit never waits for more
    profit, a stop loss never risks more loss. (A long's TP and a short's SL round down, a long's SL and a
    short's TP round up.) Exact: any inexact step raises. None when the price would not be above zero,
    as a short's take profit of 100% or more would be (or an entry below one tick): no such order can exist.
    """
    with localcontext() as context:
        context.prec = 100  # wider than any product of two wire decimals (egis_common.money)
        context.traps[Inexact] = True
        offset = entry * pct / 100
        target = entry + offset if above else entry - offset
        if target <= 0:
            return None
        ticks = target // tick_size  # the target is positive: truncation is the floor
        if not above and target % tick_size:
            ticks += 1
        return ticks * tick_size if ticks > 0 else None


STOP_PURPOSES = {OrderPurpose.TAKE_PROFIT: "take_profit", OrderPurpose.STOP_LOSS: "stop_loss"}


def stop_row(intent: Intent, purpose: OrderPurpose, order: StopOrder) -> dict[str, Any]:
    """A stop as recorded before it is placed: `placing`, until the venue's answer is recorded."""
    return {
        "client_algo_id": order.client_algo_id,
        "intent_id": intent.intent_id,
        "purpose": STOP_PURPOSES[purpose],
        "kind": order.kind,
        "side": order.side.value,
        "trigger_price": order.trigger_price,
        "status": "placing",
    }


def stop_outcome(result: StopPlaced | Rejected | Unknown) -> dict[str, Any]:
    """What the venue answered to a stop, as recorded on its row."""
    if isinstance(result, StopPlaced):
        return {"status": "placed", "algo_id": result.algo_id}
    if isinstance(result, Rejected):
        return {"status": "rejected", "exchange_code": result.code, "detail": result.message[:1000]}
    return {"status": "unknown", "detail": result.cause[:1000]}


def protective_orders_placed(placed: list[tuple[Intent, OrderPurpose, StopOrder]]) -> list[c.ProtectiveOrdersPlaced]:
    """One message per filled open naming the stops the venue accepted; an open with none accepted gets none."""
    ids: dict[UUID, tuple[Intent, dict[OrderPurpose, str]]] = {}
    for intent, purpose, order in placed:
        ids.setdefault(intent.intent_id, (intent, {}))[1][purpose] = order.client_algo_id
    return [
        c.ProtectiveOrdersPlaced(
            intent_id=intent.intent_id,
            bot_id=intent.bot_id,
            position_id=intent.position_id,
            tp_order_id=by_purpose.get(OrderPurpose.TAKE_PROFIT),
            sl_order_id=by_purpose.get(OrderPurpose.STOP_LOSS),
        )
        for intent, by_purpose in ids.values()
    ]
