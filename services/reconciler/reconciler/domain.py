"""The reconciler's rules, pure: no I/O, no async.

- Closures: which exchange facts close a position and what they prove. Facts come in as plain
  records; out come a `BackfillClosure` backed by evidence, or an enumerated reason why not.
- Drift: the disagreements between the ledger's positions (as the reconciler reads them) and the
  facts, and the pending orders the venue's evidence has not settled in time.
- Pending orders: what the venue's answer to a look-up by client order id means. An order whose
  outcome was unknown is never guessed at. Only a definitive answer settles it: a rejection, a final
  "not found" (the paper venue's, once the order's `not_after` has passed: nothing can book it any
  more), or "not found" once the venue's window for an order to show up has passed. Missing reports
  do not mean the order is absent.
- Paper repairs: the executor's command for the rows astray, and the report its answer completes.
- Admin replies in parts: a report too large for one Kafka message goes as several, joined again.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic_core import to_json
from tenacity import RetryCallState, wait_random_exponential

from egis_common import contracts as c
from egis_common.ids import OrderPurpose, client_order_id, intent_id_from_client_order_id
from egis_common.topics import encode
from egis_venues.port import Filled, LookupOutcome, NotFound, Rejected, Unknown

# --- Closures -----------------------------------------------------------------------------------------------

ZERO = Decimal(0)
FEE_ASSETS = frozenset({"USDT"})
LIQUIDATION_PREFIX = "autoclose-"  # Binance's client id of the orders its liquidation engine places
PRICE_PLACES = Decimal("1e-18")  # the wire carries at most 18 decimal places
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])
_AVERAGE = decimal.Context(prec=60)


@dataclass(frozen=True)
class PositionView:
    """The reconciler's read model of one ledger position."""

    position_id: UUID
    bot_id: UUID
    status: str
    symbol: str | None = None
    side: str | None = None
    open_intent_id: UUID | None = None
    close_intent_id: UUID | None = None
    executed_qty: Decimal | None = None
    avg_entry_price: Decimal | None = None
    close_exchange_order_id: str | None = None
    close_price: Decimal | None = None
    closed_at: datetime | None = None
    realised_pnl_usd: Decimal | None = None

    @property
    def missing_close_facts(self) -> list[str]:
        names = ("close_exchange_order_id", "close_price", "closed_at", "realised_pnl_usd")
        return [name for name in names if getattr(self, name) is None]


@dataclass(frozen=True)
class OrderFact:
    fact_id: int
    exchange_order_id: str
    client_order_id: str
    status: str
    executed_qty: Decimal
    event_time: datetime
    # Where the order lives, to ask the venue for its trades when the stream missed some.
    exchange: str = ""
    exchange_account: str = ""
    symbol: str = ""


@dataclass(frozen=True)
class AlgoFact:
    fact_id: int
    algo_id: str
    client_algo_id: str
    status: str
    spawned_order_id: str | None


@dataclass(frozen=True)
class TradeFact:
    trade_id: str
    exchange_order_id: str
    price: Decimal
    qty: Decimal
    realised_pnl_usd: Decimal
    commission: Decimal
    commission_asset: str
    event_time: datetime


@dataclass(frozen=True)
class Facts:
    orders: tuple[OrderFact, ...] = ()
    algos: tuple[AlgoFact, ...] = ()
    trades: tuple[TradeFact, ...] = ()


class NoClosure(str, Enum):
    """Why no backfill comes out of the evidence: every skip has a reason."""

    NO_FILLED_CLOSING_ORDER = "no_filled_closing_order"
    TRADES_INCOMPLETE = "trades_incomplete"
    FEE_NOT_IN_USD = "fee_not_in_usd"
    NOT_A_CLOSABLE_POSITION = "not_a_closable_position"
    CLOSE_FACTS_COMPLETE = "close_facts_complete"


def closing_ids(position: PositionView) -> dict[str, str]:
    """The deterministic client ids of every order that could close this position, by route."""
    ids: dict[str, str] = {}
    if position.open_intent_id is not None:
        ids["take_profit"] = client_order_id(position.open_intent_id, OrderPurpose.TAKE_PROFIT)
        ids["stop_loss"] = client_order_id(position.open_intent_id, OrderPurpose.STOP_LOSS)
    if position.close_intent_id is not None:
        ids["close"] = client_order_id(position.close_intent_id, OrderPurpose.ENTRY)
    return ids


def entry_client_id(position: PositionView) -> str | None:
    return client_order_id(position.open_intent_id) if position.open_intent_id else None


def candidate_orders(position: PositionView, facts: Facts) -> dict[str, str]:
    """exchange_order_id -> how it is linked to the position (route, and the algo order when spawned)."""
    ids = closing_ids(position)
    routes = {client_id: route for route, client_id in ids.items()}
    found: dict[str, str] = {}
    for algo in facts.algos:
        if algo.client_algo_id in routes and algo.spawned_order_id:
            found[algo.spawned_order_id] = f"{routes[algo.client_algo_id]}:algo:{algo.algo_id}"
    for order in facts.orders:
        if order.client_order_id in routes:
            found.setdefault(order.exchange_order_id, routes[order.client_order_id])
    if position.close_exchange_order_id:
        found.setdefault(position.close_exchange_order_id, "recorded_close")
    for order_id in liquidations(position, facts):
        found.setdefault(order_id, "liquidation")
    return found


def liquidations(position: PositionView, facts: Facts) -> list[str]:
    """The venue's liquidation orders on the position's account and symbol since its entry.

    They carry the venue's client id, not ours: the entry order's fact says where the position lives.
    One-way mode allows one active position per account and symbol, so they can only be this one's.
    """
    entry = next(
        (o for o in facts.orders if o.client_order_id == entry_client_id(position) and o.exchange_account), None
    )
    if entry is None:
        return []
    return [
        o.exchange_order_id
        for o in facts.orders
        if o.client_order_id.startswith(LIQUIDATION_PREFIX)
        and (o.exchange, o.exchange_account, o.symbol) == (entry.exchange, entry.exchange_account, entry.symbol)
        and o.event_time >= entry.event_time
    ]


def filled_closing_order(position: PositionView, facts: Facts) -> tuple[OrderFact, str] | None:
    """The earliest FILLED order among the position's closing candidates, with its route."""
    candidates = candidate_orders(position, facts)
    filled = [o for o in facts.orders if o.status == "FILLED" and o.exchange_order_id in candidates]
    if not filled:
        return None
    first = min(filled, key=lambda o: (o.event_time, o.fact_id))
    return first, candidates[first.exchange_order_id]


def _direction(side: str | None) -> int:
    return -1 if side == c.Side.SHORT.value else 1


def closure(position: PositionView, facts: Facts) -> c.BackfillClosure | NoClosure:
    """The close a FILLED closing order proves, computed from its trades; or why there is none."""
    if position.status not in ("open", "closing", "closed"):
        return NoClosure.NOT_A_CLOSABLE_POSITION
    if position.status == "closed" and not position.missing_close_facts:
        return NoClosure.CLOSE_FACTS_COMPLETE
    found = filled_closing_order(position, facts)
    if found is None:
        return NoClosure.NO_FILLED_CLOSING_ORDER
    order, route = found
    trades = sorted(
        (t for t in facts.trades if t.exchange_order_id == order.exchange_order_id),
        key=lambda t: (t.event_time, t.trade_id),
    )
    with decimal.localcontext(_EXACT):
        if not trades or sum((t.qty for t in trades), ZERO) != order.executed_qty:
            return NoClosure.TRADES_INCOMPLETE
    if any(t.commission_asset not in FEE_ASSETS for t in trades):
        return NoClosure.FEE_NOT_IN_USD
    return _backfill(position, order, route, trades)


def _backfill(position: PositionView, order: OrderFact, route: str, trades: list[TradeFact]) -> c.BackfillClosure:
    with decimal.localcontext(_EXACT):
        qty = sum((t.qty for t in trades), ZERO)
        notional = sum((t.price * t.qty for t in trades), ZERO)
        exchange_pnl = sum((t.realised_pnl_usd for t in trades), ZERO)
        fee = sum((t.commission for t in trades), ZERO)
        computed_pnl = None
        if position.avg_entry_price is not None:
            computed_pnl = (notional - position.avg_entry_price * qty) * _direction(position.side)
    with decimal.localcontext(_AVERAGE):
        close_price = (notional / qty).quantize(PRICE_PLACES).normalize()
    pnl = computed_pnl if computed_pnl is not None else exchange_pnl
    evidence = {
        "route": route,
        "order_fact_id": order.fact_id,
        "exchange_order_id": order.exchange_order_id,
        "trade_ids": [t.trade_id for t in trades],
        "qty": str(qty),
        "notional": str(notional),
        "computed_pnl_usd": None if computed_pnl is None else str(computed_pnl),
        "exchange_realised_pnl_usd": str(exchange_pnl),
        "exchange_commission_usd": str(fee),
        "pnl_source": "computed_from_entry" if computed_pnl is not None else "exchange_realised_pnl",
    }
    return c.BackfillClosure(
        bot_id=position.bot_id,
        position_id=position.position_id,
        close_exchange_order_id=order.exchange_order_id,
        close_price=close_price,
        closed_at=trades[-1].event_time,
        realised_pnl_usd=pnl,
        fee_usd=fee,
        evidence=evidence,
    )


# The routes of the closes the exchange made on its own: nobody else reports them, so the reconciler does.
EXCHANGE_ROUTES = ("take_profit:algo", "stop_loss:algo", "liquidation")


def made_by_exchange(backfill: c.BackfillClosure) -> bool:
    """A triggered take-profit or stop-loss, or a liquidation (the executor reports the closes of its own orders)."""
    route: str = backfill.evidence["route"]
    return route.startswith(EXCHANGE_ROUTES)


def order_ids_touched(new_facts: Sequence[c.Message]) -> set[str]:
    """The exchange orders these facts are about (an algo order's, the one it spawned)."""
    order_ids = {f.exchange_order_id for f in new_facts if isinstance(f, (c.ExchangeOrderFact, c.ExchangeTradeFact))}
    return order_ids | {
        f.spawned_order_id for f in new_facts if isinstance(f, c.ExchangeAlgoOrderFact) and f.spawned_order_id
    }


def intents_of(client_ids: Sequence[str]) -> set[UUID]:
    """The intents behind these client ids; an order Egis did not place has none (ours are derived)."""
    intents = set()
    for client_id in client_ids:
        try:
            intents.add(intent_id_from_client_order_id(client_id))
        except ValueError:
            continue
    return intents


# --- Pending orders: what a look-up's answer means ----------------------------------------------------------

AUTO = "auto"  # resolved_by of the reconciler's own periodic look-ups


class Resolution(str, Enum):
    FOUND_FILLED = "found_filled"
    REJECTED_BY_EXCHANGE = "rejected_by_exchange"
    # Absent for good: not found after the venue's window, or a final "not found" (the paper venue's after the
    # order's not_after; the evidence says `"not_found": "final"`). One name, so executors and the ledger that
    # know it need nothing new.
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
    # When the executor stopped waiting for the call (OrderPendingReconciliation.not_after); None: not said.
    not_after: datetime | None = None


@dataclass(frozen=True)
class NotFoundWindows:
    """How long an order may take to show up in a look-up on each venue: "not found" means absent only after it."""

    remote: timedelta  # a venue across the network (Binance)
    paper: timedelta  # the paper venue, whose orders are rows in the executor's own database

    def of(self, exchange: str) -> timedelta:
        return self.paper if exchange == c.ExchangeName.PAPER.value else self.remote


def next_look_up(order: PendingOrder, now: datetime, backoff: timedelta, window: timedelta) -> datetime:
    """The backoff's next look-up, or the first moment after the order's `not_after` or after its window ends,
    when that comes sooner: a "not found" is final after the one, and settles the order after the other, and
    neither should wait a whole backoff longer."""
    edges = (order.pending_since + window, order.not_after)
    return min([now + backoff, *(edge + WINDOW_GRACE for edge in edges if edge and edge + WINDOW_GRACE > now)])


def look_up_backoff(order: PendingOrder, backoff: timedelta, paper_max: timedelta) -> timedelta:
    """The wait after a look-up. A paper look-up is a read of the database the reconciler shares, not a request
    against a venue's rate limits: it waits at most `paper_max` (the resolver's run interval), so after an
    outage of that database, which made every look-up fail and the backoff grow, it is asked again at once."""
    return min(backoff, paper_max) if order.exchange == c.ExchangeName.PAPER.value else backoff


# A look-up just after the window (or `not_after`), not on its edge.
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
    evidence: dict[str, Any] = {
        "client_order_id": pending.client_order_id,
        "looked_up_at": now.isoformat(),
        "pending_for_s": str((now - pending.pending_since).total_seconds()),
        "cause": pending.cause,
    }
    if isinstance(outcome, Filled):
        evidence |= _fill_evidence(outcome)
        return Decision(Resolution.FOUND_FILLED, evidence, _apply_fill(pending, outcome, evidence))
    if isinstance(outcome, Rejected):
        evidence |= {"exchange_code": outcome.code, "exchange_message": outcome.message}
        return Decision(Resolution.REJECTED_BY_EXCHANGE, evidence, _release(pending, "rejected_by_exchange", evidence))
    if isinstance(outcome, NotFound) and (outcome.final or now - pending.pending_since >= window):
        # A final "not found" needs no window: the venue says nothing can book the order any more.
        evidence |= (
            {"not_found": "final", "not_after": pending.not_after and pending.not_after.isoformat()}
            if outcome.final
            else {"window_s": str(window.total_seconds())}
        )
        if pending.intent == c.IntentKind.CLOSE.value:  # sent again by the executor, the reservation still held
            return Decision(Resolution.NOT_FOUND_AFTER_WINDOW, evidence)
        return Decision(
            Resolution.NOT_FOUND_AFTER_WINDOW, evidence, _release(pending, "not_found_after_window", evidence)
        )
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
    fill = (
        None
        if found is None
        else c.FoundFill(
            exchange_order_id=found.exchange_order_id,
            executed_qty=found.executed_qty,
            avg_price=found.avg_price,
            fee_usd=found.fee_usd,
            realised_pnl_usd=found.realised_pnl_usd,
            filled_at=found.filled_at,
        )
    )
    return c.RecordResolution(
        intent_id=pending.intent_id,
        bot_id=pending.bot_id,
        resolution=decision.resolution.value,
        resolved_by=resolved_by,
        resolved_at=at,
        fill=fill,
        evidence=decision.evidence,
    )


def retry_wait(initial_s: float, max_s: float) -> Callable[[int], timedelta]:
    """The wait after a pending order's n-th look-up: random within a window that doubles up to `max_s`.

    Full jitter, so that the orders one venue outage left pending (created together) are not asked about
    together again; never less than `initial_s`.
    """
    strategy = wait_random_exponential(multiplier=initial_s, max=max_s, min=initial_s)

    def after(attempt: int) -> timedelta:
        # The wait strategy reads only the attempt number: no retrying object or function is needed.
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return timedelta(seconds=strategy(state))

    return after


def _fill_evidence(fill: Filled) -> dict[str, Any]:
    return {
        "exchange_order_id": fill.exchange_order_id,
        "executed_qty": str(fill.executed_qty),
        "avg_price": str(fill.avg_price),
        "fee_usd": str(fill.fee_usd),
        "filled_at": fill.filled_at.isoformat(),
    }


def _apply_fill(pending: PendingOrder, fill: Filled, evidence: dict[str, Any]) -> c.ApplyFoundFill:
    return c.ApplyFoundFill(
        bot_id=pending.bot_id,
        intent_id=pending.intent_id,
        position_id=pending.position_id,
        intent=c.IntentKind(pending.intent),
        client_order_id=pending.client_order_id,
        exchange_order_id=fill.exchange_order_id,
        executed_qty=fill.executed_qty,
        avg_price=fill.avg_price,
        fee_usd=fill.fee_usd,
        realised_pnl_usd=fill.realised_pnl_usd,
        filled_at=fill.filled_at,
        evidence=evidence,
    )


def _release(pending: PendingOrder, reason: str, evidence: dict[str, Any]) -> c.ReleaseReservation:
    return c.ReleaseReservation(bot_id=pending.bot_id, intent_id=pending.intent_id, reason=reason, evidence=evidence)


AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_1m", timedelta(minutes=1)),
    ("1m_to_10m", timedelta(minutes=10)),
    ("10m_to_1h", timedelta(hours=1)),
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


# --- Drift --------------------------------------------------------------------------------------------------


class DriftKind(str, Enum):
    CLOSED_WITHOUT_CLOSE_FACTS = "closed_without_close_facts"
    EXCHANGE_FILLED_CLOSE_BUT_POSITION_OPEN = "exchange_filled_close_but_position_open"
    POSITION_OPEN_BUT_NO_FILL_FACT = "position_open_but_no_fill_fact"
    CLOSE_ORDER_DIFFERS_FROM_EXCHANGE = "close_order_differs_from_exchange"
    # An order whose outcome is unknown and that automatic look-ups have not settled: its budget is still held.
    PENDING_UNRESOLVED = "pending_unresolved"


# Only these can be repaired by a backfill; the others are for a person to look at.
REPAIRABLE = frozenset({DriftKind.CLOSED_WITHOUT_CLOSE_FACTS, DriftKind.EXCHANGE_FILLED_CLOSE_BUT_POSITION_OPEN})


@dataclass(frozen=True)
class Drift:
    position_id: str
    bot_id: str
    kind: DriftKind
    detail: dict[str, Any]

    def as_report(self) -> dict[str, Any]:
        return {"position_id": self.position_id, "bot_id": self.bot_id, "kind": self.kind.value, **self.detail}


def drift_of(position: PositionView, facts: Facts) -> list[Drift]:
    """Every disagreement between one position and the facts about its orders."""
    found = filled_closing_order(position, facts)
    drifts: list[tuple[DriftKind, dict[str, Any]]] = []
    if position.status == "closed" and position.missing_close_facts:
        drifts.append((DriftKind.CLOSED_WITHOUT_CLOSE_FACTS, {"missing": position.missing_close_facts}))
    if position.status in ("open", "closing") and found is not None:
        drifts.append(
            (
                DriftKind.EXCHANGE_FILLED_CLOSE_BUT_POSITION_OPEN,
                {"exchange_order_id": found[0].exchange_order_id, "route": found[1]},
            )
        )
    if position.status in ("open", "closing") and not _entry_filled(position, facts):
        drifts.append((DriftKind.POSITION_OPEN_BUT_NO_FILL_FACT, {"entry_client_order_id": entry_client_id(position)}))
    if (
        position.status == "closed"
        and position.close_exchange_order_id
        and found is not None
        and found[0].exchange_order_id != position.close_exchange_order_id
    ):
        drifts.append(
            (
                DriftKind.CLOSE_ORDER_DIFFERS_FROM_EXCHANGE,
                {"recorded": position.close_exchange_order_id, "exchange": found[0].exchange_order_id},
            )
        )
    return [Drift(str(position.position_id), str(position.bot_id), kind, detail) for kind, detail in drifts]


def pending_drift(orders: Sequence[PendingOrder], now: datetime, escalate_after: timedelta) -> list[Drift]:
    """The unresolved pending orders past the escalation limit, each with what is known to look it up by hand."""
    return [
        Drift(
            str(o.position_id),
            str(o.bot_id),
            DriftKind.PENDING_UNRESOLVED,
            {
                "intent_id": str(o.intent_id),
                "client_order_id": o.client_order_id,
                "exchange": o.exchange,
                "exchange_account": o.exchange_account,
                "symbol": o.symbol,
                "intent": o.intent,
                "cause": o.cause,
                "pending_since": o.pending_since.isoformat(),
                "pending_for_s": str((now - o.pending_since).total_seconds()),
                "attempts": o.attempts,
                "last_lookup": dict(o.last_lookup) if o.last_lookup is not None else None,
            },
        )
        for o in orders
        if overdue(o.pending_since, now, escalate_after)
    ]


def _entry_filled(position: PositionView, facts: Facts) -> bool:
    entry = entry_client_id(position)
    return any(o.client_order_id == entry and o.status in ("FILLED", "PARTIALLY_FILLED") for o in facts.orders)


def repair_plan(position: PositionView, facts: Facts) -> dict[str, Any]:
    """One line of the sync report: what was found, and the backfill that would repair it (or why none)."""
    kinds = [d.kind for d in drift_of(position, facts) if d.kind in REPAIRABLE]
    line = {
        "position_id": str(position.position_id),
        "bot_id": str(position.bot_id),
        "status": position.status,
        "drift": [k.value for k in kinds],
        "missing": position.missing_close_facts,
    }
    outcome = closure(position, facts)
    if isinstance(outcome, NoClosure):
        return {**line, "found": False, "would_change": False, "reason": outcome.value, "backfill": None}
    return {**line, "found": True, "would_change": True, "reason": None, "backfill": outcome}


class FactIndex:
    """The facts of many positions, keyed the way a position finds its own.

    The rules look through every fact they are given, so one position's rules
    run on that position's facts only (the same ones the rules would pick out
    of all of them): a report over N positions stays linear instead of N x F.
    """

    def __init__(self, facts: Facts) -> None:
        self._algos, self._by_client, self._by_id = defaultdict(list), defaultdict(list), defaultdict(list)
        self._liquidations, self._trades = defaultdict(list), defaultdict(list)
        for algo in facts.algos:
            self._algos[algo.client_algo_id].append(algo)
        for order in facts.orders:
            self._by_client[order.client_order_id].append(order)
            self._by_id[order.exchange_order_id].append(order)
            if order.client_order_id.startswith(LIQUIDATION_PREFIX):
                self._liquidations[_venue(order)].append(order)
        for trade in facts.trades:
            self._trades[trade.exchange_order_id].append(trade)

    def of(self, position: PositionView) -> Facts:
        client_ids = [*closing_ids(position).values(), entry_client_id(position)]
        algos = [a for client_id in client_ids if client_id for a in self._algos.get(client_id, ())]
        orders = {o.fact_id: o for client_id in client_ids if client_id for o in self._by_client.get(client_id, ())}
        order_ids = {a.spawned_order_id for a in algos if a.spawned_order_id} | {position.close_exchange_order_id}
        orders |= {o.fact_id: o for order_id in order_ids if order_id for o in self._by_id.get(order_id, ())}
        entry = entry_client_id(position)
        for venue in {_venue(o) for o in orders.values() if o.client_order_id == entry}:
            orders |= {o.fact_id: o for o in self._liquidations.get(venue, ())}
        ordered = tuple(sorted(orders.values(), key=lambda o: o.fact_id))
        trades = tuple(
            t
            for order_id in dict.fromkeys(o.exchange_order_id for o in ordered)
            for t in self._trades.get(order_id, ())
        )
        return Facts(orders=ordered, algos=tuple(sorted(algos, key=lambda a: a.fact_id)), trades=trades)


def _venue(order: OrderFact) -> tuple[str, str, str]:
    return order.exchange, order.exchange_account, order.symbol


# --- Paper repairs ------------------------------------------------------------------------------------------

# The reconciler knows no bot's exchange account, and paper positions are per account and symbol.
BOT_SCOPE_REFUSED = {
    "error": "bot_scope_not_supported",
    "detail": "paper positions are kept per exchange account: run without --bot-id",
}
# The status of a stored run whose repairs the executor has not answered yet.
AWAITING = "awaiting_executor"


def repair_command(request_id: UUID, lines: list[dict[str, Any]]) -> c.RepairPaperPositions | None:
    """The executor's command for the lines that would change; None when every row follows its fills."""
    wanted = [
        c.PaperPosition(
            account=entry["account"],
            symbol=entry["symbol"],
            qty=entry["expected"]["qty"],
            entry_price=entry["expected"]["entry_price"],
        )
        for entry in lines
        if entry["would_change"]
    ]
    return c.RepairPaperPositions(request_id=request_id, repairs=wanted) if wanted else None


def completed(lines: list[dict[str, Any]], answer: c.PaperPositionsRepaired) -> list[dict[str, Any]]:
    """The lines as the executor's answer leaves them: changed where it wrote, and why not where it did not."""
    changed = {(p.account, p.symbol) for p in answer.changed}
    skipped = {(s.account, s.symbol): s.reason.value for s in answer.skipped}
    done = []
    for entry in lines:
        pair = (entry["account"], entry["symbol"])
        done.append({**entry, "changed": pair in changed, **({"skipped": skipped[pair]} if pair in skipped else {})})
    return done


def paper_repairs_done(report: dict[str, Any], answer: c.PaperPositionsRepaired) -> dict[str, Any]:
    """A stored run's report completed by the executor's answer."""
    lines = completed(report["positions"], answer)
    return {**report, **summary(lines), "positions": lines}


# --- Admin reports and replies ------------------------------------------------------------------------------


def sync_lines(
    positions: Sequence[PositionView], facts: FactIndex, not_asked: Mapping[str, str], confirm: bool
) -> tuple[list[dict[str, Any]], list[c.BackfillClosure]]:
    """sync-wrong-closed-positions' report line for each position, and the backfills a confirmed run sends.

    Backfills are `sent`, never `changed`: the ledger applies them after the reply, and its announcement
    brings the read model in line, so a later run no longer finds the position (and sends nothing).
    """
    lines, backfills = [], []
    for position in positions:
        plan = repair_plan(position, facts.of(position))
        backfill = plan.pop("backfill")
        if backfill is not None and confirm:
            backfills.append(backfill)
        lines.append(
            {
                **plan,
                "venue_not_asked": not_asked.get(str(position.position_id)),
                "sent": backfill is not None and confirm,
                "backfill": backfill.model_dump(mode="json") if backfill else None,
            }
        )
    return lines, backfills


def pending_line(order: PendingOrder, decision: Decision, changed: bool) -> dict[str, Any]:
    """resolve-pending's report line for one order."""
    found = decision.resolution in (Resolution.FOUND_FILLED, Resolution.REJECTED_BY_EXCHANGE)
    return {
        "intent_id": str(order.intent_id),
        "bot_id": str(order.bot_id),
        "resolution": decision.resolution.value,
        "found": found,
        "would_change": decision.settles,
        "changed": changed,
        "evidence": decision.evidence,
    }


def summary(lines: list[dict[str, Any]], *counted: str) -> dict[str, int]:
    """How many lines, and how many of them are true for each of `counted` (would_change and changed unless told)."""
    return {
        "examined": len(lines),
        **{name: sum(line[name] for line in lines) for name in counted or ("would_change", "changed")},
    }


_COUNT_ROOM = 2 * 8  # the envelope's part numbers, written as 1 while measuring, may take this many digits more


def paged(command: c.AdminCommand, status: str, report: dict[str, Any], max_bytes: int) -> list[c.AdminReply]:
    """The reply to `command` as one message when it fits in `max_bytes` encoded, else in parts that do."""
    return paged_reply(
        command.request_id,
        command.command,
        dry_run=not command.confirm,
        status=status,
        report=report,
        max_bytes=max_bytes,
    )


def paged_reply(
    request_id: UUID, name: c.AdminCommandName, *, dry_run: bool, status: str, report: dict[str, Any], max_bytes: int
) -> list[c.AdminReply]:
    """`paged` for a request known by its id (a run completed after the command was handled)."""

    def reply(part_report: dict[str, Any], part: int = 1, parts: int = 1) -> c.AdminReply:
        return c.AdminReply(
            request_id=request_id,
            command=name,
            status=status,
            dry_run=dry_run,
            report=part_report,
            part=part,
            parts=parts,
        )

    whole = reply(report)
    lists = [name for name, value in report.items() if isinstance(value, list)]
    if not lists or len(encode(whole)) <= max_bytes:
        return [whole]
    room = max_bytes - len(encode(reply({**report, **{name: [] for name in lists}}))) - _COUNT_ROOM
    pages = _split([(name, line) for name in lists for line in report[name]], room)
    return [reply(_page_report(report, lists, page), n, len(pages)) for n, page in enumerate(pages, start=1)]


def _split(lines: list[tuple[str, Any]], room: int) -> list[list[tuple[str, Any]]]:
    pages: list[list[tuple[str, Any]]] = [[]]
    used = 0
    for name, line in lines:
        size = len(to_json(line)) + 1  # and its comma
        if pages[-1] and used + size > room:
            pages.append([])
            used = 0
        pages[-1].append((name, line))
        used += size
    return pages


def _page_report(report: dict[str, Any], lists: list[str], page: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        name: [line for of, line in page if of == name] if name in lists else value for name, value in report.items()
    }
