"""The venues, read-only: the look-up of a pending order by client order id, and REST as the stream's fallback.

`look_up` asks an order's venue about it (`egis_venues.port.ExchangePort.find_order`).
`venue_evidence` asks what the venue knows of the orders that could have closed a
position, through its request-weight budget, and touches no database: the admin
command stores what came back as facts like any other (a fact already stored stays
as it is) in its writing transaction, so the venue is never asked while rows are
written. A position the venue could not be asked about keeps its reason, and a
later run asks again: nothing is lost by stopping early.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from egis_common import contracts as c
from egis_common.logs import get_logger
from egis_venues.port import LookupOutcome, NotFound, Unknown
from reconciler.adapters.binance_events import from_account_trade, from_algo_order, from_order
from reconciler.domain import (
    Facts,
    NoClosure,
    OrderFact,
    PendingOrder,
    PositionView,
    closing_ids,
    closure,
    entry_client_id,
    filled_closing_order,
)

log = get_logger(__name__)
ALGO_ROUTES = ("take_profit", "stop_loss")
BANNED, OUT_OF_TIME = "venue_banned", "run_out_of_time"


class OrderLookup(Protocol):
    """The one read-only question the reconciler asks a venue (egis_venues.port.ExchangePort.find_order)."""

    async def find_order(
        self, account: str, symbol: str, client_order_id: str, not_after: datetime | None = None
    ) -> LookupOutcome: ...


async def look_up(venues: Mapping[str, OrderLookup], order: PendingOrder) -> LookupOutcome:
    """The order's `not_after` goes along: a venue that holds to it answers a final "not found" after it."""
    venue = venues.get(order.exchange)
    if venue is None:
        return Unknown(f"no_lookup_for_{order.exchange}")
    return await venue.find_order(order.exchange_account, order.symbol, order.client_order_id, order.not_after)


@dataclass
class Evidence:
    """Facts the venue gave, and for each position it could not be asked about, why."""

    facts: list[c.Message] = field(default_factory=list)
    not_asked: dict[str, str] = field(default_factory=dict)  # position id -> reason
    asked: int = 0
    stopped: str | None = None

    def report(self, venues: Mapping[str, Any]) -> dict[str, Any]:
        budgets = {name: v.weights.report() for name, v in venues.items() if getattr(v, "weights", None)}
        return {
            "positions_asked": self.asked,
            "facts_fetched": len(self.facts),
            "stopped": self.stopped,
            "not_asked": dict(Counter(self.not_asked.values())),
            "weight": budgets,
        }


async def venue_evidence(
    venues: Mapping[str, Any], positions: list[PositionView], facts_of, ask_for_s: float
) -> Evidence:
    """Ask the venue about every position the stored facts cannot close yet; `facts_of(position)` gives its facts.

    After `ask_for_s` (the admin command's time, less a margin: ReconcilerSettings.admin_ask_for_s) the rest
    are left for the next run, each with its reason.
    """
    evidence, deadline = Evidence(), time.monotonic() + ask_for_s
    for position in positions:
        facts = facts_of(position)
        outcome = closure(position, facts)
        if outcome not in (NoClosure.TRADES_INCOMPLETE, NoClosure.NO_FILLED_CLOSING_ORDER):
            continue
        if evidence.stopped is None and time.monotonic() >= deadline:
            evidence.stopped = OUT_OF_TIME
        if evidence.stopped is not None:
            evidence.not_asked[str(position.position_id)] = evidence.stopped
            continue
        found, why = await _ask(venues, position, facts, outcome)
        evidence.facts += found
        if why is None:
            evidence.asked += 1
            continue
        evidence.not_asked[str(position.position_id)] = why
        if why == BANNED:  # sending more would lengthen the ban: stop, report, let a later run continue
            evidence.stopped = BANNED
    return evidence


async def _ask(
    venues: Mapping[str, Any], position: PositionView, facts: Facts, outcome: NoClosure
) -> tuple[list[c.Message], str | None]:
    if outcome is NoClosure.TRADES_INCOMPLETE:
        order, _route = filled_closing_order(position, facts)
        venue = venues.get(order.exchange)
        if venue is None or not hasattr(venue, "account_trades"):
            return [], f"no_venue_for_{order.exchange}"
        return await _trades(venue, order.exchange_account, order.symbol, order.exchange_order_id)
    entry = next(
        (o for o in facts.orders if o.client_order_id == entry_client_id(position) and o.exchange_account), None
    )
    if entry is None:  # the entry's fact says which account and symbol to ask; without it, nobody knows
        return [], "no_entry_fact"
    venue = venues.get(entry.exchange)
    if venue is None or not hasattr(venue, "order_status"):
        return [], f"no_venue_for_{entry.exchange}"
    return await _closing_orders(venue, entry, position)


async def _closing_orders(venue: Any, entry: OrderFact, position: PositionView) -> tuple[list[c.Message], str | None]:
    """The position's closing orders in route order, down to the first filled one and its trades."""
    found: list[c.Message] = []
    account, symbol = entry.exchange_account, entry.symbol
    for route, client_id in closing_ids(position).items():
        if route in ALGO_ROUTES:
            algo = await venue.order_status(account, symbol, clientAlgoId=client_id)
            if isinstance(algo, NotFound):
                continue
            if isinstance(algo, Unknown):
                return found, _why(venue, algo)
            found.append(from_algo_order(algo, account))
            if not found[-1].spawned_order_id:
                continue
            order = await venue.order_status(account, symbol, orderId=found[-1].spawned_order_id)
        else:
            order = await venue.order_status(account, symbol, origClientOrderId=client_id)
        if isinstance(order, NotFound):
            continue
        if isinstance(order, Unknown):
            return found, _why(venue, order)
        found.append(from_order(order, account))
        if found[-1].status == "FILLED":
            trades, why = await _trades(venue, account, symbol, found[-1].exchange_order_id)
            return found + trades, why
    return found, None


async def _trades(venue: Any, account: str, symbol: str, order_id: str) -> tuple[list[c.Message], str | None]:
    trades = await venue.account_trades(account, symbol, order_id)
    if not isinstance(trades, list):  # Unknown: the report says so, a later run retries
        log.warning("trades_fetch_failed", order_id=order_id, cause=trades.cause)
        return [], _why(venue, trades)
    return [from_account_trade(trade, account) for trade in trades], None


def _why(venue: Any, unknown: Unknown) -> str:
    weights = getattr(venue, "weights", None)
    if unknown.cause.startswith("http_418") or (weights is not None and weights.banned_until_s > time.time()):
        return BANNED
    return f"venue_unknown: {unknown.cause}"
