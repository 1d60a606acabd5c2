"""The admin commands' use cases, each in two steps so that no transaction stays open while the venue is asked.

`prepare_*` reads what it needs in a short read-only transaction, asks the
venue holding no connection, and returns a `Write`: the step that, inside the
admin handler's one writing transaction, stores what the venue said and
returns the outcome (status, report, ledger commands). Nothing is written
before that step, so a run that fails half way has changed nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

from egis_common import contracts as c
from egis_common.contracts import utc_now
from egis_common.logs import get_logger
from egis_venues.port import LookupOutcome, Unknown
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reconciler import domain, paper_repair
from reconciler.adapters import pending, read_model
from reconciler.domain import (
    Decision,
    DriftKind,
    FactIndex,
    NotFoundWindows,
    PendingOrder,
    PositionView,
    backlog,
    decide,
    drift_of,
    operator,
    pending_drift,
    pending_line,
    summary,
    sync_lines,
)
from reconciler.metrics import CLOSURES_BACKFILLED, DRIFT, PENDING_SETTLED, show_pending
from reconciler.adapters.repository import facts_for
from reconciler.trade_fetch import OUT_OF_TIME, Evidence, store_evidence, venue_evidence

log = get_logger(__name__)
REPAIRABLE_STATUSES = ("open", "closing", "closed")
# resolve-pending also lists what the periodic job settled: the latest, within a day, so the reply stays small.
AUTO_REPORT_WINDOW = timedelta(days=1)
AUTO_REPORT_LIMIT = 50


class OrderLookup(Protocol):
    """The one read-only question the reconciler asks a venue (egis_venues.port.ExchangePort.find_order)."""

    async def find_order(self, account: str, symbol: str, client_order_id: str) -> LookupOutcome: ...


@dataclass(frozen=True)
class Outcome:
    status: str
    report: dict[str, Any]
    commands: list[c.Message] = field(default_factory=list)  # to the ledger (or the executor), with the reply
    # The reply waits for the executor's answer to `commands`: the run is stored as awaiting it, and the answer
    # completes it (reconcile-paper-positions).
    awaiting_executor: bool = False


Write = Callable[[AsyncConnection], Awaitable[Outcome]]


def fixed(outcome: Outcome) -> Write:
    """A step that writes nothing and answers `outcome`."""
    async def write(_conn: AsyncConnection) -> Outcome:
        return outcome

    return write


async def prepare_drift_report(engine: AsyncEngine, command: c.AdminCommand, escalate_after: timedelta) -> Write:
    async with engine.connect() as conn:
        return fixed(Outcome("ok", await drift_report(conn, command, escalate_after)))


async def drift_report(conn: AsyncConnection, command: c.AdminCommand, escalate_after: timedelta) -> dict[str, Any]:
    """Reads only: positions against their facts, and the pending orders past `escalate_after`."""
    positions = await read_model.load(conn, command.bot_id)
    facts = FactIndex(await facts_for(conn, positions, with_trades=False))  # drift never looks at trades
    orders, now = await pending.unresolved(conn, command.bot_id), utc_now()
    drifts = [d.as_report() for p in positions for d in drift_of(p, facts.of(p))]
    drifts += [d.as_report() for d in pending_drift(orders, now, escalate_after)]
    by_kind = Counter(d["kind"] for d in drifts)
    waiting = backlog([o.pending_since for o in orders], now, escalate_after)
    if command.bot_id is None:  # the gauges describe the whole system, not one bot
        for kind in DriftKind:
            DRIFT.labels(kind.value).set(by_kind.get(kind.value, 0))
        show_pending(waiting)
    return {"positions_examined": len(positions), "by_kind": dict(by_kind), "pending_by_age": waiting.by_age,
            "drift": drifts}


async def sync_wrong_closed_positions(engine: AsyncEngine, command: c.AdminCommand, venues: Mapping[str, Any],
                                      ask_for_s: float) -> Outcome:
    """The whole sync outside the admin handler (tests, bench): the same steps, without inbox, run or reply."""
    write = await prepare_sync(engine, command, venues, ask_for_s)
    async with engine.begin() as conn:
        return await write(conn)


async def prepare_sync(engine: AsyncEngine, command: c.AdminCommand, venues: Mapping[str, Any],
                       ask_for_s: float) -> Write:
    """Closed positions missing close facts, and open ones the exchange closed: backfill from evidence.

    The venue is asked (within its weight budget, for at most `ask_for_s`) about what the stored facts cannot
    close; the write stores what it said, then plans each position from every fact stored by then.
    """
    async with engine.connect() as conn:
        positions = await _repairable(conn, command.bot_id)
        facts = FactIndex(await facts_for(conn, positions))
    evidence = await venue_evidence(venues, positions, facts.of, ask_for_s)
    venue_report = evidence.report(venues)
    asked_about = {p.position_id for p in positions}

    async def write(conn: AsyncConnection) -> Outcome:
        await store_evidence(conn, evidence)
        # As they are now: the ledger may have closed some while the venue was asked.
        now = [p for p in await _repairable(conn, command.bot_id) if p.position_id in asked_about]
        return _sync_outcome(command, now, FactIndex(await facts_for(conn, now)), evidence, venue_report)

    return write


async def _repairable(conn: AsyncConnection, bot_id: UUID | None) -> list[PositionView]:
    return [p for p in await read_model.load(conn, bot_id, REPAIRABLE_STATUSES)
            if p.status != "closed" or p.missing_close_facts]


def _sync_outcome(command: c.AdminCommand, positions: list[PositionView], facts: FactIndex, evidence: Evidence,
                  venue_report: dict[str, Any]) -> Outcome:
    lines, backfills = sync_lines(positions, facts, evidence.not_asked, command.confirm)
    for backfill in backfills:
        CLOSURES_BACKFILLED.labels(backfill.evidence["route"].split(":")[0]).inc()
    return Outcome("ok", {**summary(lines, "would_change", "sent"), "venue": venue_report, "positions": lines},
                   backfills)


async def prepare_resolve_pending(engine: AsyncEngine, command: c.AdminCommand, venues: Mapping[str, OrderLookup],
                                  windows: NotFoundWindows, ask_for_s: float) -> Write:
    """Every unsettled pending order, looked up by client order id; settled only on a definitive answer.

    The write settles an order only if nobody settled it meanwhile (the periodic job, the executor's own
    report, another run), and only then sends its ledger command and the executor's record of it: a settlement
    happens once. The report also lists what the periodic job settled lately (`resolved_automatically`).
    """
    async with engine.connect() as conn:
        orders = await pending.unresolved(conn, command.bot_id)
    decisions, stopped = await look_up_all(venues, orders, windows, ask_for_s)

    async def write(conn: AsyncConnection) -> Outcome:
        lines, messages = [], []
        for order, decision in decisions:
            settled = await _settled(conn, command, order, decision)
            messages += settled
            log.info("pending_order_looked_up", intent_id=str(order.intent_id), resolution=decision.resolution.value,
                     changed=bool(settled), evidence=decision.evidence)
            lines.append(pending_line(order, decision, bool(settled)))
        automatic = await pending.resolved_automatically(conn, command.bot_id, utc_now() - AUTO_REPORT_WINDOW,
                                                         AUTO_REPORT_LIMIT)
        return Outcome("ok", {**summary(lines), "stopped": stopped, "pending": lines,
                              "resolved_automatically": automatic}, messages)

    return write


async def look_up_all(venues: Mapping[str, OrderLookup], orders: list[PendingOrder], windows: NotFoundWindows,
                      ask_for_s: float) -> tuple[list[tuple[PendingOrder, Decision]], str | None]:
    """Each order's decision; after `ask_for_s` the rest are not looked up and stay unknown, saying why."""
    deadline, decisions, stopped = time.monotonic() + ask_for_s, [], None
    for order in orders:
        if stopped is None and time.monotonic() >= deadline:
            stopped = OUT_OF_TIME
        outcome = Unknown(stopped) if stopped is not None else await look_up(venues, order)
        decisions.append((order, decide(order, outcome, utc_now(), windows.of(order.exchange))))
    return decisions, stopped


async def look_up(venues: Mapping[str, OrderLookup], order: PendingOrder) -> LookupOutcome:
    venue = venues.get(order.exchange)
    if venue is None:
        return Unknown(f"no_lookup_for_{order.exchange}")
    return await venue.find_order(order.exchange_account, order.symbol, order.client_order_id)


async def _settled(conn: AsyncConnection, command: c.AdminCommand, order: PendingOrder,
                   decision: Decision) -> list[c.Message]:
    """What a confirmed run's settlement of `order` sends; nothing on a dry run or when settled already."""
    if not command.confirm:
        return []
    by = operator(command.operator_id)
    settled = await pending.settle_decided(conn, order, decision, by, utc_now())
    if settled:
        PENDING_SETTLED.labels("operator", decision.resolution.value).inc()
    return settled


def reconcile_paper_positions(command: c.AdminCommand) -> Write:
    """Database only (no venue): read in the writing transaction; a confirmed run with rows to repair sends the
    executor its command and replies once the executor says what it changed (`paper_repair`)."""
    if command.bot_id is not None:
        return fixed(Outcome("failed", domain.BOT_SCOPE_REFUSED))

    async def write(conn: AsyncConnection) -> Outcome:
        lines = await paper_repair.examine(conn)
        report = {**summary(lines), "positions": lines}
        repair = domain.repair_command(command.request_id, lines) if command.confirm else None
        if repair is None:
            return Outcome("ok", report)
        return Outcome(domain.AWAITING, report, [repair], awaiting_executor=True)

    return write
