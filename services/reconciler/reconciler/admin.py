"""Admin commands: authenticate, run (dry-run unless confirmed), answer with a full report.

A request is run once: its report is stored under its `request_id`, and the
same request again gets the stored report back without doing anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from egis_common import contracts as c
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.logs import get_logger
from egis_common.outbox import Outbox
from executor.exchange import LookupOutcome, Unknown
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection

from reconciler import auth, paper_repair, pending, read_model, runs
from reconciler.drift import DriftKind, FactIndex, drift_of, repair_plan
from reconciler.metrics import CLOSURES_BACKFILLED, DRIFT, PENDING_BY_AGE, REPAIR_RUNS
from reconciler.repository import facts_for
from reconciler.resolution import (
    Decision,
    PendingOrder,
    Resolution,
    decide,
    pending_by_age,
)
from reconciler.trade_fetch import ASK_FOR_S, store_evidence, venue_evidence

log = get_logger(__name__)
REPAIRABLE_STATUSES = ("open", "closing", "closed")


class OrderLookup(Protocol):
    """The one read-only question the reconciler asks a venue (executor.exchange.ExchangePort.find_order)."""

    async def find_order(self, account: str, symbol: str, client_order_id: str) -> LookupOutcome: ...


@dataclass(frozen=True)
class Admin:
    outbox: Outbox
    operator_keys: Mapping[str, SecretStr]
    max_age: timedelta
    venues: Mapping[str, OrderLookup]  # by exchange name
    not_found_window: timedelta

    async def handle(self, conn: AsyncConnection, command: c.AdminCommand) -> c.AdminReply:
        why = auth.refusal(command, self.operator_keys, utc_now(), self.max_age)
        if why is not None:
            log.warning("admin_command_refused", operator_id=command.operator_id, command=command.command.value,
                        request_id=str(command.request_id), reason=why.value)
            return await self._answer(conn, command, "refused", {"reason": why.value})
        if (previous := await runs.stored(conn, command.request_id)) is not None:
            return await self._answer(conn, command, previous.status, {**previous.report, "repeated_request": True})
        status, report, backfills = await self._run(conn, command)
        if not await runs.record(conn, command, status, report):
            return await self._answer(conn, command, status, {"repeated_request": True})
        await self.outbox.add(conn, *backfills)
        log.info("admin_command_run", operator_id=command.operator_id, command=command.command.value,
                 request_id=str(command.request_id), confirm=command.confirm, status=status, report=report)
        return await self._answer(conn, command, status, report)

    async def _answer(self, conn: AsyncConnection, command: c.AdminCommand, status: str, report: dict) -> c.AdminReply:
        REPAIR_RUNS.labels(command.command.value, status).inc()
        reply = c.AdminReply(request_id=command.request_id, command=command.command, status=status,
                             dry_run=not command.confirm, report=report)
        await self.outbox.add(conn, reply)
        return reply

    async def _run(self, conn: AsyncConnection, command: c.AdminCommand) -> tuple[str, dict, list[c.Message]]:
        if command.command is AdminCommandName.DRIFT_REPORT:
            return "ok", await drift_report(conn, command), []
        if command.command is AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS:
            return await sync_wrong_closed_positions(conn, command, self.venues)
        if command.command is AdminCommandName.RESOLVE_PENDING:
            return await self.resolve_pending(conn, command)
        if command.command is AdminCommandName.RECONCILE_PAPER_POSITIONS and command.bot_id is not None:
            return "failed", paper_repair.BOT_SCOPE_REFUSED, []
        if command.command is AdminCommandName.RECONCILE_PAPER_POSITIONS:
            lines = await paper_repair.reconcile(conn, confirm=command.confirm)
            return "ok", {**_summary(lines), "positions": lines}, []
        return "failed", {"error": "not_implemented", "detail": f"{command.command.value} is not available yet"}, []

    async def resolve_pending(self, conn: AsyncConnection, command: c.AdminCommand) -> tuple[str, dict, list]:
        """Every unsettled pending order, looked up by client order id; settled only on a definitive answer."""
        lines, commands = [], []
        for order in await pending.unresolved(conn, command.bot_id):
            decision = decide(order, await self._look_up(order), utc_now(), self.not_found_window)
            changed = decision.command is not None and command.confirm
            if changed:
                await pending.settle(conn, order.intent_id, decision.resolution.value, decision.evidence, utc_now())
                commands.append(decision.command)
            log.info("pending_order_looked_up", intent_id=str(order.intent_id), resolution=decision.resolution.value,
                     changed=changed, evidence=decision.evidence)
            lines.append(_pending_line(order, decision, changed))
        return "ok", {**_summary(lines), "pending": lines}, commands

    async def _look_up(self, order: PendingOrder) -> LookupOutcome:
        venue = self.venues.get(order.exchange)
        if venue is None:
            return Unknown(f"no_lookup_for_{order.exchange}")
        return await venue.find_order(order.exchange_account, order.symbol, order.client_order_id)


def _pending_line(order: PendingOrder, decision: Decision, changed: bool) -> dict[str, Any]:
    found = decision.resolution in (Resolution.FOUND_FILLED, Resolution.REJECTED_BY_EXCHANGE)
    return {"intent_id": str(order.intent_id), "bot_id": str(order.bot_id), "resolution": decision.resolution.value,
            "found": found, "would_change": decision.command is not None, "changed": changed,
            "evidence": decision.evidence}


def _summary(lines: list[dict[str, Any]]) -> dict[str, int]:
    return {"examined": len(lines), "would_change": sum(line["would_change"] for line in lines),
            "changed": sum(line["changed"] for line in lines)}


async def drift_report(conn: AsyncConnection, command: c.AdminCommand) -> dict[str, Any]:
    positions = await read_model.load(conn, command.bot_id)
    facts = FactIndex(await facts_for(conn, positions, with_trades=False))  # drift never looks at trades
    drifts = [d.as_report() for p in positions for d in drift_of(p, facts.of(p))]
    by_kind = Counter(d["kind"] for d in drifts)
    ages = pending_by_age(await pending.unresolved(conn, command.bot_id, lock=False), utc_now())
    if command.bot_id is None:  # the gauges describe the whole system, not one bot
        for kind in DriftKind:
            DRIFT.labels(kind.value).set(by_kind.get(kind.value, 0))
        for age, count in ages.items():
            PENDING_BY_AGE.labels(age).set(count)
    return {"positions_examined": len(positions), "by_kind": dict(by_kind), "pending_by_age": ages, "drift": drifts}


async def sync_wrong_closed_positions(
    conn: AsyncConnection, command: c.AdminCommand, venues: Mapping[str, Any], ask_for_s: float = ASK_FOR_S
) -> tuple[str, dict, list]:
    """Closed positions missing close facts, and open ones the exchange closed: backfill from evidence.

    Read, then ask the venue (within its weight budget, no rows written meanwhile), then store what it said.
    """
    positions = [p for p in await read_model.load(conn, command.bot_id, REPAIRABLE_STATUSES)
                 if p.status != "closed" or p.missing_close_facts]
    facts = FactIndex(await facts_for(conn, positions))
    evidence = await venue_evidence(venues, positions, facts.of, ask_for_s)
    if evidence.facts:
        await store_evidence(conn, evidence)
        facts = FactIndex(await facts_for(conn, positions))
    lines, backfills = [], []
    for position in positions:
        plan = repair_plan(position, facts.of(position))
        backfill = plan.pop("backfill")
        if backfill is not None and command.confirm:
            backfills.append(backfill)
            CLOSURES_BACKFILLED.labels(backfill.evidence["route"].split(":")[0]).inc()
        lines.append({**plan, "venue_not_asked": evidence.not_asked.get(str(position.position_id)),
                      "changed": backfill is not None and command.confirm,
                      "backfill": backfill.model_dump(mode="json") if backfill else None})
    return "ok", {**_summary(lines), "venue": evidence.report(venues), "positions": lines}, backfills
