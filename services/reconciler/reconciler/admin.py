"""The operators' admin commands: authenticate, run (dry-run unless confirmed), answer with a full report.

Entry points (what `flow.py` calls):
    on_admin_command    an AdminCommand: drift-report, sync-wrong-closed-positions, resolve-pending,
                        reconcile-paper-positions
    on_paper_repairs    a batch of PaperPositionsRepaired: the executor's answer completes a paper repair's run

A use-case family of its own (signed commands, dry run or confirm, replies in parts, runs that wait for the
executor), so it has its own module beside `handlers.py`.

Two steps, so that no transaction (and no pooled connection) is held while the
venue is asked, which may take minutes:

1. `prepare`, outside any writing transaction: authenticate, look for a stored
   run of this request, read the command's inputs in a short read-only
   transaction, ask the venue holding no connection. Each command's `prepare_*`
   returns a `Write`: the step that stores what the venue said and returns the
   outcome (status, report, ledger commands). Nothing is written before that
   step, so a run that fails half way has changed nothing;
2. `commit`, inside the handler's one transaction (the one that claims the
   message in the inbox): run the `Write`, record the run, and put the reply
   (in parts when large) and the ledger commands in the outbox.

A request is run once: its report is stored under its `request_id`, and the
same request again gets the stored report back without doing anything.

A confirmed reconcile-paper-positions asks the executor to write its rows: its
run is stored as awaiting the executor, with no reply yet, and
`complete_paper_repairs` completes it and replies when the executor answers
(the same request sent again meanwhile gets that reply too: replies are keyed
by request id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import SecretStr
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from egis_common import contracts as c
from egis_common.batches import process_batch
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.logs import get_logger
from egis_common.outbox import Inbox, Outbox
from egis_common.runtime import Runtime
from egis_common.topics import ADMIN_COMMANDS, PAPER_REPAIRS
from reconciler import auth, domain
from reconciler.adapters import paper_repair, pending, read_model, repository, runs
from reconciler.adapters.venues import Evidence, OrderLookup, venue_evidence
from reconciler.domain import (
    AWAITING,
    Decision,
    DriftKind,
    FactIndex,
    NotFoundWindows,
    PendingOrder,
    PositionView,
    backlog,
    drift_of,
    operator,
    paged,
    paged_reply,
    paper_repairs_done,
    pending_drift,
    pending_line,
    summary,
    sync_lines,
)
from reconciler.handlers import look_up_all
from reconciler.metrics import CLOSURES_BACKFILLED, DRIFT, PENDING_SETTLED, REPAIR_RUNS, show_pending

log = get_logger(__name__)
REPAIRABLE_STATUSES = ("open", "closing", "closed")
# resolve-pending also lists what the periodic job settled: the latest, within a day, so the reply stays small.
AUTO_REPORT_WINDOW = timedelta(days=1)
AUTO_REPORT_LIMIT = 50


async def on_admin_command(runtime: Runtime, admin: Admin, inbox: Inbox, body: bytes) -> None:
    command = ADMIN_COMMANDS.decode(body)
    # Authenticate, read, ask the venue: no transaction held meanwhile.
    prepared = await admin.prepare(command)
    # One short transaction: the claim, what the venue said, the run, the reply and ledger commands (outbox).
    async with runtime.uow.begin() as conn:
        if not await inbox.claim(conn, command.message_id):
            return
        replies = await admin.commit(conn, command, prepared)
    log.info(
        "admin_command_answered",
        request_id=str(command.request_id),
        status=replies[0].status if replies else AWAITING,
        parts=len(replies),
    )


async def on_paper_repairs(runtime: Runtime, admin: Admin, inbox: Inbox, records: Sequence[Any]) -> None:
    """The executor's answers in one transaction: each run awaiting one completed, and replied to."""
    await process_batch(records, PAPER_REPAIRS, runtime.uow, inbox, runtime.dead_letters, admin.complete_paper_repairs)


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


@dataclass(frozen=True)
class Prepared:
    write: Write
    new_run: bool  # recorded under its request id; a refusal or a repeated request is not


@dataclass(frozen=True)
class Admin:
    engine: AsyncEngine
    outbox: Outbox
    operator_keys: Mapping[str, SecretStr]
    max_age: timedelta
    venues: Mapping[str, OrderLookup]  # by exchange name
    not_found_windows: NotFoundWindows
    ask_for_s: float  # how long a command may ask the venue
    reply_part_bytes: int
    escalate_after: timedelta  # a pending order unresolved this long is drift (pending_unresolved)

    async def prepare(self, command: c.AdminCommand) -> Prepared:
        why = auth.refusal(command, self.operator_keys, utc_now(), self.max_age)
        if why is not None:
            log.warning(
                "admin_command_refused",
                operator_id=command.operator_id,
                command=command.command.value,
                request_id=str(command.request_id),
                reason=why.value,
            )
            return Prepared(fixed(Outcome("refused", {"reason": why.value})), new_run=False)
        async with self.engine.connect() as conn:
            previous = await runs.stored(conn, command.request_id)
        if previous is not None:
            return Prepared(fixed(_repeated(previous)), new_run=False)
        return Prepared(await self._prepare_run(command), new_run=True)

    async def commit(self, conn: AsyncConnection, command: c.AdminCommand, prepared: Prepared) -> list[c.AdminReply]:
        """The reply, in parts; none yet when the run awaits the executor."""
        outcome = await self._outcome(conn, command, prepared)
        if outcome.awaiting_executor:
            await self.outbox.add(conn, *outcome.commands)
            return []
        replies = paged(command, outcome.status, outcome.report, self.reply_part_bytes)
        await self.outbox.add(conn, *outcome.commands, *replies)
        REPAIR_RUNS.labels(command.command.value, outcome.status).inc()
        return replies

    async def complete_paper_repairs(
        self, conn: AsyncConnection, answers: list[c.PaperPositionsRepaired]
    ) -> list[c.AdminReply]:
        """The executor's answers: each run awaiting one completed with what was really changed, and replied to."""
        replies: list[c.AdminReply] = []
        for answer in answers:
            run = await runs.held(conn, answer.request_id)
            if run is None or run.status != AWAITING:  # an answer repeated, or to a run of no one's
                log.warning(
                    "paper_repair_answer_ignored",
                    request_id=str(answer.request_id),
                    run_status=run.status if run is not None else None,
                )
                continue
            report = paper_repairs_done(run.report, answer)
            for line in report["positions"]:
                if line["changed"]:
                    log.info("paper_position_repaired", **line)
            await runs.complete(conn, answer.request_id, "ok", report)
            replies += paged_reply(
                answer.request_id,
                AdminCommandName.RECONCILE_PAPER_POSITIONS,
                dry_run=False,
                status="ok",
                report=report,
                max_bytes=self.reply_part_bytes,
            )
            REPAIR_RUNS.labels(AdminCommandName.RECONCILE_PAPER_POSITIONS.value, "ok").inc()
            log.info("admin_command_completed", request_id=str(answer.request_id), summary=_log_summary(report))
        await self.outbox.add(conn, *replies)
        return replies

    async def _outcome(self, conn: AsyncConnection, command: c.AdminCommand, prepared: Prepared) -> Outcome:
        if not prepared.new_run:
            return await prepared.write(conn)
        if (previous := await runs.held(conn, command.request_id)) is not None:  # a duplicate ran meanwhile
            return _repeated(previous)
        outcome = await prepared.write(conn)
        await runs.record(conn, command, outcome.status, outcome.report)
        log.info(
            "admin_command_run",
            operator_id=command.operator_id,
            command=command.command.value,
            request_id=str(command.request_id),
            confirm=command.confirm,
            status=outcome.status,
            summary=_log_summary(outcome.report),
        )  # the whole report is in repair_runs and on the reply topic
        return outcome

    async def _prepare_run(self, command: c.AdminCommand) -> Write:
        name = command.command
        if name is AdminCommandName.DRIFT_REPORT:
            return await prepare_drift_report(self.engine, command, self.escalate_after)
        if name is AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS:
            return await prepare_sync(self.engine, command, self.venues, self.ask_for_s)
        if name is AdminCommandName.RESOLVE_PENDING:
            return await prepare_resolve_pending(
                self.engine, command, self.venues, self.not_found_windows, self.ask_for_s
            )
        if name is AdminCommandName.RECONCILE_PAPER_POSITIONS:
            return reconcile_paper_positions(command)
        return fixed(Outcome("failed", {"error": "not_implemented", "detail": f"{name.value} is not available yet"}))


def _repeated(previous: Row) -> Outcome:
    report: dict[str, Any] = {**previous.report, "repeated_request": True}
    # Still awaiting the executor: the reply that completes the run answers this request too.
    return Outcome(previous.status, report, awaiting_executor=previous.status == AWAITING)


def _log_summary(report: dict) -> dict:
    """The report without its per-position lists: a 100k-position report is megabytes, too big for a log line."""
    return {key: value for key, value in report.items() if not isinstance(value, list)}


async def prepare_drift_report(engine: AsyncEngine, command: c.AdminCommand, escalate_after: timedelta) -> Write:
    async with engine.connect() as conn:
        return fixed(Outcome("ok", await drift_report(conn, command, escalate_after)))


async def drift_report(conn: AsyncConnection, command: c.AdminCommand, escalate_after: timedelta) -> dict[str, Any]:
    """Reads only: positions against their facts, and the pending orders past `escalate_after`."""
    positions = await read_model.load(conn, command.bot_id)
    facts = FactIndex(await repository.facts_for(conn, positions, with_trades=False))  # drift never looks at trades
    orders, now = await pending.unresolved(conn, command.bot_id), utc_now()
    drifts = [d.as_report() for p in positions for d in drift_of(p, facts.of(p))]
    drifts += [d.as_report() for d in pending_drift(orders, now, escalate_after)]
    by_kind = Counter(d["kind"] for d in drifts)
    waiting = backlog([o.pending_since for o in orders], now, escalate_after)
    if command.bot_id is None:  # the gauges describe the whole system, not one bot
        for kind in DriftKind:
            DRIFT.labels(kind.value).set(by_kind.get(kind.value, 0))
        show_pending(waiting)
    return {
        "positions_examined": len(positions),
        "by_kind": dict(by_kind),
        "pending_by_age": waiting.by_age,
        "drift": drifts,
    }


async def sync_wrong_closed_positions(
    engine: AsyncEngine, command: c.AdminCommand, venues: Mapping[str, Any], ask_for_s: float
) -> Outcome:
    """The whole sync outside the admin handler (tests, bench): the same steps, without inbox, run or reply."""
    write = await prepare_sync(engine, command, venues, ask_for_s)
    async with engine.begin() as conn:
        return await write(conn)


async def prepare_sync(
    engine: AsyncEngine, command: c.AdminCommand, venues: Mapping[str, Any], ask_for_s: float
) -> Write:
    """Closed positions missing close facts, and open ones the exchange closed: backfill from evidence.

    The venue is asked (within its weight budget, for at most `ask_for_s`) about what the stored facts cannot
    close; the write stores what it said, then plans each position from every fact stored by then.
    """
    async with engine.connect() as conn:
        positions = await _repairable(conn, command.bot_id)
        facts = FactIndex(await repository.facts_for(conn, positions))
    evidence = await venue_evidence(venues, positions, facts.of, ask_for_s)
    venue_report = evidence.report(venues)
    asked_about = {p.position_id for p in positions}

    async def write(conn: AsyncConnection) -> Outcome:
        await repository.insert_facts(conn, evidence.facts)  # a fact already stored stays as it is
        # As they are now: the ledger may have closed some while the venue was asked.
        now = [p for p in await _repairable(conn, command.bot_id) if p.position_id in asked_about]
        return _sync_outcome(command, now, FactIndex(await repository.facts_for(conn, now)), evidence, venue_report)

    return write


async def _repairable(conn: AsyncConnection, bot_id: UUID | None) -> list[PositionView]:
    return [
        p
        for p in await read_model.load(conn, bot_id, REPAIRABLE_STATUSES)
        if p.status != "closed" or p.missing_close_facts
    ]


def _sync_outcome(
    command: c.AdminCommand,
    positions: list[PositionView],
    facts: FactIndex,
    evidence: Evidence,
    venue_report: dict[str, Any],
) -> Outcome:
    lines, backfills = sync_lines(positions, facts, evidence.not_asked, command.confirm)
    for backfill in backfills:
        CLOSURES_BACKFILLED.labels(backfill.evidence["route"].split(":")[0]).inc()
    return Outcome(
        "ok", {**summary(lines, "would_change", "sent"), "venue": venue_report, "positions": lines}, backfills
    )


async def prepare_resolve_pending(
    engine: AsyncEngine,
    command: c.AdminCommand,
    venues: Mapping[str, OrderLookup],
    windows: NotFoundWindows,
    ask_for_s: float,
) -> Write:
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
            log.info(
                "pending_order_looked_up",
                intent_id=str(order.intent_id),
                resolution=decision.resolution.value,
                changed=bool(settled),
                evidence=decision.evidence,
            )
            lines.append(pending_line(order, decision, bool(settled)))
        automatic = await pending.resolved_automatically(
            conn, command.bot_id, utc_now() - AUTO_REPORT_WINDOW, AUTO_REPORT_LIMIT
        )
        return Outcome(
            "ok",
            {**summary(lines), "stopped": stopped, "pending": lines, "resolved_automatically": automatic},
            messages,
        )

    return write


async def _settled(
    conn: AsyncConnection, command: c.AdminCommand, order: PendingOrder, decision: Decision
) -> list[c.Message]:
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
