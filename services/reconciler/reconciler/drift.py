"""Drift between the ledger's positions (as the reconciler reads them) and exchange facts, and pending orders
the venue's evidence has not settled in time. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from reconciler.domain import (
    LIQUIDATION_PREFIX,
    Facts,
    NoClosure,
    OrderFact,
    PositionView,
    closing_ids,
    closure,
    entry_client_id,
    filled_closing_order,
)
from reconciler.resolution import PendingOrder, overdue


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
    detail: dict

    def as_report(self) -> dict:
        return {"position_id": self.position_id, "bot_id": self.bot_id, "kind": self.kind.value, **self.detail}


def drift_of(position: PositionView, facts: Facts) -> list[Drift]:
    """Every disagreement between one position and the facts about its orders."""
    found = filled_closing_order(position, facts)
    drifts: list[tuple[DriftKind, dict]] = []
    if position.status == "closed" and position.missing_close_facts:
        drifts.append((DriftKind.CLOSED_WITHOUT_CLOSE_FACTS, {"missing": position.missing_close_facts}))
    if position.status in ("open", "closing") and found is not None:
        drifts.append((DriftKind.EXCHANGE_FILLED_CLOSE_BUT_POSITION_OPEN,
                       {"exchange_order_id": found[0].exchange_order_id, "route": found[1]}))
    if position.status in ("open", "closing") and not _entry_filled(position, facts):
        drifts.append((DriftKind.POSITION_OPEN_BUT_NO_FILL_FACT, {"entry_client_order_id": entry_client_id(position)}))
    if (position.status == "closed" and position.close_exchange_order_id and found is not None
            and found[0].exchange_order_id != position.close_exchange_order_id):
        drifts.append((DriftKind.CLOSE_ORDER_DIFFERS_FROM_EXCHANGE,
                       {"recorded": position.close_exchange_order_id, "exchange": found[0].exchange_order_id}))
    return [Drift(str(position.position_id), str(position.bot_id), kind, detail) for kind, detail in drifts]


def pending_drift(orders: Sequence[PendingOrder], now: datetime, escalate_after: timedelta) -> list[Drift]:
    """The unresolved pending orders past the escalation limit, each with what is known to look it up by hand."""
    return [Drift(str(o.position_id), str(o.bot_id), DriftKind.PENDING_UNRESOLVED, {
        "intent_id": str(o.intent_id), "client_order_id": o.client_order_id, "exchange": o.exchange,
        "exchange_account": o.exchange_account, "symbol": o.symbol, "intent": o.intent, "cause": o.cause,
        "pending_since": o.pending_since.isoformat(), "pending_for_s": str((now - o.pending_since).total_seconds()),
        "attempts": o.attempts, "last_lookup": dict(o.last_lookup) if o.last_lookup is not None else None,
    }) for o in orders if overdue(o.pending_since, now, escalate_after)]


def _entry_filled(position: PositionView, facts: Facts) -> bool:
    entry = entry_client_id(position)
    return any(o.client_order_id == entry and o.status in ("FILLED", "PARTIALLY_FILLED") for o in facts.orders)


def repair_plan(position: PositionView, facts: Facts) -> dict:
    """One line of the sync report: what was found, and the backfill that would repair it (or why none)."""
    kinds = [d.kind for d in drift_of(position, facts) if d.kind in REPAIRABLE]
    line = {"position_id": str(position.position_id), "bot_id": str(position.bot_id), "status": position.status,
            "drift": [k.value for k in kinds], "missing": position.missing_close_facts}
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
        trades = tuple(t for order_id in dict.fromkeys(o.exchange_order_id for o in ordered)
                       for t in self._trades.get(order_id, ()))
        return Facts(orders=ordered, algos=tuple(sorted(algos, key=lambda a: a.fact_id)), trades=trades)


def _venue(order: OrderFact) -> tuple[str, str, str]:
    return order.exchange, order.exchange_account, order.symbol
