"""Drift between the ledger's positions (as the reconciler reads them) and exchange facts. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from reconciler.domain import (
    Facts,
    NoClosure,
    PositionView,
    closure,
    entry_client_id,
    filled_closing_order,
)


class DriftKind(str, Enum):
    CLOSED_WITHOUT_CLOSE_FACTS = "closed_without_close_facts"
    EXCHANGE_FILLED_CLOSE_BUT_POSITION_OPEN = "exchange_filled_close_but_position_open"
    POSITION_OPEN_BUT_NO_FILL_FACT = "position_open_but_no_fill_fact"
    CLOSE_ORDER_DIFFERS_FROM_EXCHANGE = "close_order_differs_from_exchange"


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
