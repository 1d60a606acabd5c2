"""The ledger's rules: positions, the budget formula, preflight, executions, backfills.

Pure: no I/O, no async. Every function takes the state it needs and returns
the new state plus the messages that announce it; the flow persists both in
one transaction. Each invariant here is also a database constraint
(migrations/versions/0002_ledger.py).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast
from uuid import UUID

from egis_common import contracts as c
from egis_common.contracts import IntentKind, PreflightRejectReason, Side
from egis_common.ids import client_order_id

ZERO = Decimal("0")


class PositionStatus(str, Enum):
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


ACTIVE = frozenset({PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING})
# An order of the position's is at the exchange: what it did is not known yet.
IN_FLIGHT = frozenset({PositionStatus.OPENING, PositionStatus.CLOSING})
TRANSITIONS: dict[PositionStatus, frozenset[PositionStatus]] = {
    PositionStatus.OPENING: frozenset({PositionStatus.OPEN, PositionStatus.FAILED}),
    PositionStatus.OPEN: frozenset({PositionStatus.CLOSING, PositionStatus.CLOSED}),
    PositionStatus.CLOSING: frozenset({PositionStatus.CLOSED, PositionStatus.OPEN}),
    PositionStatus.CLOSED: frozenset(),
    PositionStatus.FAILED: frozenset(),
}


class IllegalTransition(Exception):
    pass


@dataclass(frozen=True)
class Bot:
    bot_id: UUID
    initial_budget_usd: Decimal
    exchange: str
    exchange_account: str
    paused: bool = False
    deleted: bool = False


@dataclass(frozen=True)
class Position:
    position_id: UUID
    bot_id: UUID
    symbol: str
    side: Side
    status: PositionStatus
    exchange: str
    exchange_account: str
    requested_size_usd: Decimal
    open_intent_id: UUID
    size_usd: Decimal = ZERO
    executed_qty: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    open_exchange_order_id: str | None = None
    opened_at: datetime | None = None
    close_intent_id: UUID | None = None
    close_exchange_order_id: str | None = None
    close_price: Decimal | None = None
    closed_at: datetime | None = None
    realised_pnl_usd: Decimal | None = None
    fee_usd: Decimal = ZERO
    failure_reason: str | None = None
    # Client algo ids of the take-profit and stop-loss the executor placed: facts, kept whatever the status.
    tp_order_id: str | None = None
    sl_order_id: str | None = None

    def moved_to(self, status: PositionStatus, **changes: Any) -> Position:
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"{self.position_id}: {self.status.value} -> {status.value}")
        return replace(self, status=status, **changes)

    @property
    def close_facts_complete(self) -> bool:
        return None not in (self.close_exchange_order_id, self.close_price, self.closed_at, self.realised_pnl_usd)


# --- the budget contract ----------------------------------------------------

# Exact arithmetic: 60 significant digits and every inexact result raises, so
# no rounding ever happens silently; the debug log states that there was none.
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


@dataclass(frozen=True)
class Budget:
    initial_usd: Decimal
    reserved_open_usd: Decimal
    reserved_opening_usd: Decimal
    available_usd: Decimal


def compute_budget(
    initial_usd: Decimal, positions: Iterable[Position], debug: Callable[..., None] | None = None
) -> Budget:
    """initial - SUM(size_usd of open and closing) - SUM(requested_size_usd of opening).

    The one place the formula lives. Closed and failed positions reserve nothing.
    """
    positions = list(positions)
    # Every preflight runs this twice over all the bot's active positions: one pass, and the
    # exact context's own methods instead of entering a local context (which copies it).
    add, subtract = _EXACT.add, _EXACT.subtract
    reserved_open = reserved_opening = ZERO
    for p in positions:
        if p.status is PositionStatus.OPENING:
            reserved_opening = add(reserved_opening, p.requested_size_usd)
        elif p.status is PositionStatus.OPEN or p.status is PositionStatus.CLOSING:
            reserved_open = add(reserved_open, p.size_usd)
    available = subtract(subtract(initial_usd, reserved_open), reserved_opening)
    budget = Budget(initial_usd, reserved_open, reserved_opening, available)
    if debug is not None:
        debug(
            "budget_computed",
            initial_usd=str(initial_usd),
            open_positions=[
                (str(p.position_id), p.status.value, str(p.size_usd))
                for p in positions
                if p.status in (PositionStatus.OPEN, PositionStatus.CLOSING)
            ],
            opening_positions=[
                (str(p.position_id), str(p.requested_size_usd)) for p in positions if p.status is PositionStatus.OPENING
            ],
            reserved_open_usd=str(reserved_open),
            reserved_opening_usd=str(reserved_opening),
            rounding="none: exact decimal arithmetic, inexact results raise",
            available_usd=str(available),
        )
    return budget


def budget_changed(bot_id: UUID, budget: Budget) -> c.BudgetChanged:
    return c.BudgetChanged(
        bot_id=bot_id,
        initial_usd=budget.initial_usd,
        reserved_open_usd=budget.reserved_open_usd,
        reserved_opening_usd=budget.reserved_opening_usd,
        available_usd=budget.available_usd,
    )


# --- preflight ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a handler persists: changed positions and the messages announcing them."""

    positions: tuple[Position, ...] = ()
    messages: tuple[c.Message, ...] = ()
    rejection: PreflightRejectReason | None = None
    note: str = ""
    created: tuple[Position, ...] = field(default=())
    # The reservation waits behind an order in flight; it is decided when that order settles.
    waiting: bool = False
    # A backfill or found fill the ledger refused: its claim matches nothing the ledger holds.
    refusal: ClaimRefusal | None = None


def _rejected(command: c.ReserveBudget, reason: PreflightRejectReason, detail: str) -> Outcome:
    answer = c.PreflightRejected(intent_id=command.intent_id, bot_id=command.bot_id, reason=reason, detail=detail)
    return Outcome(messages=(answer,), rejection=reason, note=detail)


def must_wait(command: c.ReserveBudget, bot: Bot | None, bot_positions: list[Position], earlier_waiting: bool) -> bool:
    """Signals for a bot are applied in the order they arrived.

    A reservation waits while the bot has an order in flight on the symbol (an open not yet
    filled, a close not yet done), or while an earlier reservation for the bot and symbol
    waits: a close behind its open closes what the open made, and a buy behind that close
    opens after it. A reservation that would be refused whatever happens (no such bot, a
    deleted bot, an account other than the bot's) does not wait.
    """
    if bot is None or bot.deleted or command.exchange_account != bot.exchange_account:
        return False
    return earlier_waiting or any(p.symbol == command.symbol and p.status in IN_FLIGHT for p in bot_positions)


def waiting(command: c.ReserveBudget) -> Outcome:
    return Outcome(waiting=True, note=f"waiting behind the bot's order in flight on {command.symbol}")


def decide_reservation(
    command: c.ReserveBudget,
    bot: Bot | None,
    bot_positions: list[Position],
    account_symbol_holder: UUID | None,
    new_position_id: UUID,
    min_order_size_usd: Decimal,
    debug: Callable[..., None] | None = None,
    waited_for: Position | None = None,
) -> Outcome:
    """The preflight decision for one reservation command.

    `bot_positions` are the bot's positions that reserve budget (opening, open, closing);
    `account_symbol_holder` is another bot's active position on the same account and symbol;
    `waited_for` is the position whose order this reservation waited behind, now settled.
    """
    if bot is None:
        return _rejected(command, PreflightRejectReason.UNKNOWN_BOT, "no such bot")
    if bot.deleted:
        return _rejected(command, PreflightRejectReason.BOT_DELETED, "the bot is deleted")
    if command.exchange_account != bot.exchange_account:
        # The executor takes the account from the bot; a command naming another came from no intent of this bot.
        return _rejected(
            command,
            PreflightRejectReason.ACCOUNT_MISMATCH,
            f"the command names account {command.exchange_account!r}, not the bot's"[:1000],
        )
    if command.intent is IntentKind.CLOSE:
        return _decide_close(command, bot_positions, waited_for)
    return _decide_open(command, bot, bot_positions, account_symbol_holder, new_position_id, min_order_size_usd, debug)


def _decide_open(
    command: c.ReserveBudget,
    bot: Bot,
    bot_positions: list[Position],
    account_symbol_holder: UUID | None,
    new_position_id: UUID,
    min_order_size_usd: Decimal,
    debug: Callable[..., None] | None,
) -> Outcome:
    reason = PreflightRejectReason
    if bot.paused:
        return _rejected(command, reason.BOT_PAUSED, "the bot is paused")
    if any(p.symbol == command.symbol and p.status in ACTIVE for p in bot_positions):
        return _rejected(command, reason.EXISTING_OPEN_POSITION, f"{command.symbol} already has an active position")
    if account_symbol_holder is not None:
        return _rejected(
            command, reason.ACCOUNT_SYMBOL_IN_USE, f"bot {account_symbol_holder} holds {command.symbol} on this account"
        )
    requested = command.requested_size_usd
    if requested is None or requested < min_order_size_usd:
        return _rejected(command, reason.BELOW_MIN_SIZE, f"requested {requested} < minimum {min_order_size_usd}")
    budget = compute_budget(bot.initial_budget_usd, bot_positions, debug)
    if requested > budget.available_usd:
        return _rejected(
            command, reason.INSUFFICIENT_BUDGET, f"requested {requested} > available {budget.available_usd}"
        )
    position = Position(
        position_id=new_position_id,
        bot_id=bot.bot_id,
        symbol=command.symbol,
        # Only a close leaves its side out (the router names an open's side from the signal's action).
        side=cast(Side, command.side),
        status=PositionStatus.OPENING,
        exchange=bot.exchange,
        exchange_account=bot.exchange_account,
        requested_size_usd=requested,
        open_intent_id=command.intent_id,
    )
    reserved = c.BudgetReserved(
        intent_id=command.intent_id,
        bot_id=bot.bot_id,
        position_id=position.position_id,
        intent=IntentKind.OPEN,
        side=command.side,
        symbol=command.symbol,
        reserved_usd=requested,
    )
    after = compute_budget(bot.initial_budget_usd, [*bot_positions, position])
    return Outcome(created=(position,), messages=(reserved, budget_changed(bot.bot_id, after)))


def _decide_close(command: c.ReserveBudget, bot_positions: list[Position], waited_for: Position | None) -> Outcome:
    reason = PreflightRejectReason.NO_OPEN_POSITION_TO_CLOSE
    candidates = [p for p in bot_positions if p.symbol == command.symbol and p.status in ACTIVE]
    if not candidates and waited_for is not None and waited_for.status is PositionStatus.FAILED:
        return _rejected(
            command, PreflightRejectReason.OPEN_FAILED, f"the open it waited for failed: {waited_for.failure_reason}"
        )
    if not candidates:
        return _rejected(command, reason, f"no position on {command.symbol}")
    (position,) = candidates  # at most one active position per bot and symbol (unique index)
    if command.position_id is not None and command.position_id != position.position_id:
        return _rejected(command, reason, f"position {command.position_id} is not the active one")
    if position.status is not PositionStatus.OPEN:
        return _rejected(command, reason, f"position is {position.status.value}, not open")
    if command.side is not None and command.side != position.side:
        return _rejected(command, reason, f"the open position is {position.side.value}, not {command.side.value}")
    if position.exchange_account != command.exchange_account:
        # The bot's account changed while the position was open: a close sent there would close nothing it holds.
        return _rejected(
            command,
            PreflightRejectReason.ACCOUNT_MISMATCH,
            f"the position is on account {position.exchange_account!r}, not the command's"[:1000],
        )
    closing = position.moved_to(PositionStatus.CLOSING, close_intent_id=command.intent_id)
    reserved = c.BudgetReserved(
        intent_id=command.intent_id,
        bot_id=position.bot_id,
        position_id=position.position_id,
        intent=IntentKind.CLOSE,
        side=position.side,
        symbol=position.symbol,
        reserved_usd=ZERO,
        close_qty=position.executed_qty,
    )
    return Outcome(positions=(closing,), messages=(reserved,))


def wait_expired(command: c.ReserveBudget, waited_seconds: float) -> Outcome:
    """A reservation that waited longer than the ledger allows is refused: a signal that late is not acted on."""
    return _rejected(
        command,
        PreflightRejectReason.WAIT_EXPIRED,
        f"waited {waited_seconds:.0f} s behind an order in flight on {command.symbol}",
    )


# --- executions -----------------------------------------------------------------


def realised_pnl(side: Side, entry_price: Decimal, exit_price: Decimal, qty: Decimal) -> Decimal:
    with decimal.localcontext(_EXACT):
        direction = 1 if side is Side.LONG else -1
        return (exit_price - entry_price) * qty * direction


def apply_fill(position: Position, fill: c.OrderFilled, initial_budget_usd: Decimal, others: list[Position]) -> Outcome:
    """An open fill opens with the executed size; a close fill closes, or reduces when partial."""
    if fill.intent is IntentKind.OPEN:
        return _apply_open_fill(position, fill, initial_budget_usd, others)
    return _apply_close_fill(position, fill, initial_budget_usd, others)


def _with_budget(
    bot_id: UUID, initial: Decimal, positions: list[Position], *messages: c.Message
) -> tuple[c.Message, ...]:
    return (*messages, budget_changed(bot_id, compute_budget(initial, positions)))


def _apply_open_fill(position: Position, fill: c.OrderFilled, initial: Decimal, others: list[Position]) -> Outcome:
    if position.status is not PositionStatus.OPENING or position.open_intent_id != fill.intent_id:
        return Outcome(note=f"open fill ignored: position is {position.status.value}")
    if fill.executed_qty == 0:
        return apply_rejection(position, "filled_zero_quantity", initial, others)
    with decimal.localcontext(_EXACT):
        size_usd = fill.executed_qty * fill.avg_price
    opened = position.moved_to(
        PositionStatus.OPEN,
        size_usd=size_usd,
        executed_qty=fill.executed_qty,
        avg_entry_price=fill.avg_price,
        open_exchange_order_id=fill.exchange_order_id,
        opened_at=fill.filled_at,
        fee_usd=position.fee_usd + fill.fee_usd,
    )
    event = c.PositionOpened(
        bot_id=opened.bot_id,
        position_id=opened.position_id,
        symbol=opened.symbol,
        side=opened.side,
        requested_size_usd=opened.requested_size_usd,
        size_usd=size_usd,
        executed_qty=fill.executed_qty,
        avg_entry_price=fill.avg_price,
        opened_at=fill.filled_at,
        intent_id=fill.intent_id,
    )
    return Outcome(positions=(opened,), messages=_with_budget(opened.bot_id, initial, [*others, opened], event))


def _apply_close_fill(position: Position, fill: c.OrderFilled, initial: Decimal, others: list[Position]) -> Outcome:
    if position.status is not PositionStatus.CLOSING or position.close_intent_id != fill.intent_id:
        return Outcome(note=f"close fill ignored: position is {position.status.value}")
    assert position.avg_entry_price is not None
    closed_qty = min(fill.executed_qty, position.executed_qty)
    pnl = fill.realised_pnl_usd
    if pnl is None:
        pnl = realised_pnl(position.side, position.avg_entry_price, fill.avg_price, closed_qty)
    with decimal.localcontext(_EXACT):
        total_pnl = (position.realised_pnl_usd or ZERO) + pnl
        fee = position.fee_usd + fill.fee_usd
        remaining = position.executed_qty - closed_qty
    if remaining > 0:
        return _reduce(position, closed_qty, remaining, total_pnl, fee, initial, others)
    closed = position.moved_to(
        PositionStatus.CLOSED,
        close_exchange_order_id=fill.exchange_order_id,
        close_price=fill.avg_price,
        closed_at=fill.filled_at,
        realised_pnl_usd=total_pnl,
        fee_usd=fee,
    )
    return Outcome(positions=(closed,), messages=_with_budget(closed.bot_id, initial, others, _closed_event(closed)))


def _reduce(
    position: Position,
    closed_qty: Decimal,
    remaining: Decimal,
    pnl: Decimal,
    fee: Decimal,
    initial: Decimal,
    others: list[Position],
) -> Outcome:
    """A partial close: the executed part is realised; the rest is open again, at its entry value."""
    with decimal.localcontext(_EXACT):
        # The one caller, a close fill, has asserted the entry price.
        size_usd = remaining * cast(Decimal, position.avg_entry_price)
    reduced = position.moved_to(
        PositionStatus.OPEN,
        executed_qty=remaining,
        size_usd=size_usd,
        realised_pnl_usd=pnl,
        fee_usd=fee,
        close_intent_id=None,
    )
    event = c.PositionReduced(
        bot_id=reduced.bot_id,
        position_id=reduced.position_id,
        symbol=reduced.symbol,
        closed_qty=closed_qty,
        remaining_qty=remaining,
        size_usd=size_usd,
        realised_pnl_usd=pnl,
        intent_id=position.close_intent_id,
    )
    return Outcome(positions=(reduced,), messages=_with_budget(reduced.bot_id, initial, [*others, reduced], event))


def _closed_event(position: Position, *, backfilled: bool = False) -> c.PositionClosed:
    return c.PositionClosed(
        bot_id=position.bot_id,
        position_id=position.position_id,
        symbol=position.symbol,
        close_exchange_order_id=position.close_exchange_order_id,
        close_price=position.close_price,
        closed_at=position.closed_at,
        realised_pnl_usd=position.realised_pnl_usd,
        fee_usd=position.fee_usd,
        backfilled=backfilled,
        intent_id=None if backfilled else position.close_intent_id,
    )


def apply_rejection(position: Position, reason: str, initial: Decimal, others: list[Position]) -> Outcome:
    """The exchange refused (or never got) the order: release what the intent reserved."""
    if position.status is PositionStatus.OPENING:
        failed = position.moved_to(PositionStatus.FAILED, failure_reason=reason)
        event = c.PositionFailed(
            bot_id=failed.bot_id, position_id=failed.position_id, reason=reason, intent_id=position.open_intent_id
        )
        return Outcome(positions=(failed,), messages=_with_budget(failed.bot_id, initial, others, event))
    if position.status is PositionStatus.CLOSING:
        reopened = position.moved_to(PositionStatus.OPEN, close_intent_id=None)
        refused = c.CloseRejected(
            bot_id=reopened.bot_id, position_id=reopened.position_id, reason=reason, intent_id=position.close_intent_id
        )
        return Outcome(positions=(reopened,), messages=(refused,))
    return Outcome(note=f"rejection ignored: position is {position.status.value}")


def decide_execution(execution: c.Message, position: Position, initial: Decimal, others: list[Position]) -> Outcome:
    """What an OrderFilled, OrderRejected, OrderPendingReconciliation or ProtectiveOrdersPlaced does to its position."""
    if isinstance(execution, c.OrderFilled):
        return apply_fill(position, execution, initial, others)
    if isinstance(execution, c.ProtectiveOrdersPlaced):
        return record_protective_orders(position, execution)
    if isinstance(execution, c.OrderRejected):
        if not intent_owns(position, execution.intent_id):
            return Outcome(note="rejection of a settled intent")
        return apply_rejection(
            position, f"exchange_rejected:{execution.exchange_code}:{execution.reason}", initial, others
        )
    # OrderPendingReconciliation: the reservation stays held until the reconciler resolves it
    return Outcome(note="pending reconciliation: reservation held")


def record_protective_orders(position: Position, placed: c.ProtectiveOrdersPlaced) -> Outcome:
    """The TP/SL ids of the position's open: filled in where missing, never overwritten; no budget moves."""
    if placed.intent_id != position.open_intent_id:
        return Outcome(note="protective orders of another intent ignored")
    named = {"tp_order_id": placed.tp_order_id, "sl_order_id": placed.sl_order_id}
    missing: dict[str, Any] = {
        name: value for name, value in named.items() if value is not None and getattr(position, name) is None
    }
    differing = sorted(
        name for name, value in named.items() if value is not None and getattr(position, name) not in (None, value)
    )
    note = f"kept the recorded {differing}" if differing else ""
    if not missing:
        return Outcome(note=note or "protective orders already recorded")
    return Outcome(positions=(replace(position, **missing),), note=note or f"recorded {sorted(missing)}")


def intent_owns(position: Position, intent_id: UUID) -> bool:
    """True when `intent_id` is the intent whose reservation the position currently holds."""
    return (position.status is PositionStatus.OPENING and position.open_intent_id == intent_id) or (
        position.status is PositionStatus.CLOSING and position.close_intent_id == intent_id
    )


# What can end an intent's reservation: the order's own fill or failure, or the reconciler's answer about it.
SETTLING = (c.OrderFilled, c.OrderRejected, c.ApplyFoundFill, c.ReleaseReservation)


def settles_reservation(message: c.Message, outcome: Outcome) -> bool:
    """True when `message` ended its intent's reservation: it changed the position, which no longer holds that
    intent. An order of that intent pending reconciliation is then no longer pending."""
    if not isinstance(message, SETTLING):
        return False
    return bool(outcome.positions) and not any(intent_owns(p, message.intent_id) for p in outcome.positions)


# --- the reconciler's claims: backfills and found fills ------------------------------------


class ClaimRefusal(str, Enum):
    """Why a backfill or a found fill is refused: a valid message whose claim matches nothing the ledger holds.
    Refused, it changes nothing and is not dead-lettered (it is no poison: it is false)."""

    UNKNOWN_POSITION = "unknown_position"  # the bot holds no position with this id
    INTENT_MISMATCH = "intent_mismatch"  # the position's open (or close) is not this intent's
    CLIENT_ORDER_ID_MISMATCH = "client_order_id_mismatch"  # not the client order id the intent's order carries


def refused_claim(reason: ClaimRefusal, detail: str) -> Outcome:
    return Outcome(refusal=reason, note=detail[:1000])


def unknown_position(command: c.BackfillClosure | c.ApplyFoundFill) -> Outcome:
    return refused_claim(ClaimRefusal.UNKNOWN_POSITION, f"bot {command.bot_id} holds no position {command.position_id}")


def found_fill_refusal(found: c.ApplyFoundFill, position: Position) -> Outcome | None:
    """A found fill must be of the order the position's open (or close) sent: that intent, that client order id."""
    held = position.open_intent_id if found.intent is IntentKind.OPEN else position.close_intent_id
    if held != found.intent_id:
        return refused_claim(
            ClaimRefusal.INTENT_MISMATCH, f"the position's {found.intent.value} is intent {held}, not {found.intent_id}"
        )
    if found.client_order_id != client_order_id(found.intent_id):
        return refused_claim(
            ClaimRefusal.CLIENT_ORDER_ID_MISMATCH,
            f"{found.client_order_id!r} is not the client order id of intent {found.intent_id}",
        )
    return None


# --- backfill -------------------------------------------------------------------


def apply_backfill(position: Position, command: c.BackfillClosure, initial: Decimal, others: list[Position]) -> Outcome:
    """Close facts from the exchange's evidence. Evidence decides, not state.

    An open or closing position the exchange closed becomes closed; a closed one
    missing its close facts gets them; facts already present are never overwritten.
    `fee_usd` on a position is every fee it paid, so the closing order's fee is
    added once, when its closing order is first recorded. A backfill of facts the
    ledger already has means the sender's copy of the position lacks them: the
    ledger's own facts are announced again (nothing changes here) so that it heals.
    """
    facts: dict[str, Any] = {
        "close_exchange_order_id": command.close_exchange_order_id,
        "close_price": command.close_price,
        "closed_at": command.closed_at,
        "realised_pnl_usd": command.realised_pnl_usd,
    }
    with decimal.localcontext(_EXACT):
        fee_with_close = position.fee_usd + command.fee_usd
    if position.status in (PositionStatus.OPEN, PositionStatus.CLOSING):
        closed = position.moved_to(PositionStatus.CLOSED, **facts, fee_usd=fee_with_close)
        event = _closed_event(closed, backfilled=True)
        return Outcome(positions=(closed,), messages=_with_budget(closed.bot_id, initial, others, event))
    if position.status is not PositionStatus.CLOSED:
        return Outcome(note=f"backfill refused: position is {position.status.value}")
    missing = {name: value for name, value in facts.items() if getattr(position, name) is None}
    if not missing:
        return Outcome(
            messages=(_closed_event(position, backfilled=True),),
            note="backfill: close facts already complete, announced again",
        )
    if "close_exchange_order_id" in missing:
        missing["fee_usd"] = fee_with_close
    filled = replace(position, **missing)
    return Outcome(
        positions=(filled,), messages=(_closed_event(filled, backfilled=True),), note=f"filled {sorted(missing)}"
    )


# --- bots -------------------------------------------------------------------------


def deletion_refusal(active_positions: list[Position]) -> str | None:
    """A bot with an opening, open or closing position cannot be deleted."""
    if active_positions:
        held = ", ".join(f"{p.symbol} ({p.status.value})" for p in active_positions)
        return f"the bot has active positions: {held}"
    return None


def latest_budget_per_bot(messages: Iterable[c.Message]) -> list[c.Message]:
    """Within one transaction only the last budget of each bot is ever observable: drop the others."""
    messages = list(messages)
    last = {m.bot_id: i for i, m in enumerate(messages) if isinstance(m, c.BudgetChanged)}
    return [m for i, m in enumerate(messages) if not isinstance(m, c.BudgetChanged) or last[m.bot_id] == i]
