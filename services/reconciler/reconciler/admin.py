"""Admin commands: authenticate, run (dry-run unless confirmed), answer with a full report.

Two steps, so that no transaction (and no pooled connection) is held while the
venue is asked, which may take minutes:

1. `prepare`, outside any writing transaction: authenticate, look for a stored
   run of this request, read the command's inputs in a short read-only
   transaction, ask the venue holding no connection (`reconciler.commands`);
2. `commit`, inside the handler's one transaction (the one that claims the
   message in the inbox): store what the venue said, settle what it proved,
   record the run, and put the reply (in parts when large) and the ledger
   commands in the outbox.

A request is run once: its report is stored under its `request_id`, and the
same request again gets the stored report back without doing anything.

A confirmed reconcile-paper-positions asks the executor to write its rows: its
run is stored as awaiting the executor, with no reply yet, and
`complete_paper_repairs` completes it and replies when the executor answers
(the same request sent again meanwhile gets that reply too: replies are keyed
by request id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from egis_common import contracts as c
from egis_common.contracts import AdminCommandName, utc_now
from egis_common.logs import get_logger
from egis_common.outbox import Outbox
from pydantic import SecretStr
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reconciler import auth
from reconciler.adapters import runs
from reconciler.commands import (
    OrderLookup,
    Outcome,
    Write,
    fixed,
    prepare_drift_report,
    prepare_resolve_pending,
    prepare_sync,
    reconcile_paper_positions,
)
from reconciler.metrics import REPAIR_RUNS
from reconciler.domain import AWAITING, NotFoundWindows, paged, paged_reply, paper_repairs_done

log = get_logger(__name__)


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
            log.warning("admin_command_refused", operator_id=command.operator_id, command=command.command.value,
                        request_id=str(command.request_id), reason=why.value)
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

    async def complete_paper_repairs(self, conn: AsyncConnection,
                                     answers: list[c.PaperPositionsRepaired]) -> list[c.AdminReply]:
        """The executor's answers: each run awaiting one completed with what was really changed, and replied to."""
        replies: list[c.AdminReply] = []
        for answer in answers:
            run = await runs.held(conn, answer.request_id)
            if run is None or run.status != AWAITING:  # an answer repeated, or to a run of no one's
                log.warning("paper_repair_answer_ignored", request_id=str(answer.request_id),
                            run_status=run.status if run is not None else None)
                continue
            report = paper_repairs_done(run.report, answer)
            for line in report["positions"]:
                if line["changed"]:
                    log.info("paper_position_repaired", **line)
            await runs.complete(conn, answer.request_id, "ok", report)
            replies += paged_reply(answer.request_id, AdminCommandName.RECONCILE_PAPER_POSITIONS, dry_run=False,
                                   status="ok", report=report, max_bytes=self.reply_part_bytes)
            REPAIR_RUNS.labels(AdminCommandName.RECONCILE_PAPER_POSITIONS.value, "ok").inc()
            log.info("admin_command_completed", request_id=str(answer.request_id), summary=_summary(report))
        await self.outbox.add(conn, *replies)
        return replies

    async def _outcome(self, conn: AsyncConnection, command: c.AdminCommand, prepared: Prepared) -> Outcome:
        if not prepared.new_run:
            return await prepared.write(conn)
        if (previous := await runs.held(conn, command.request_id)) is not None:  # a duplicate ran meanwhile
            return _repeated(previous)
        outcome = await prepared.write(conn)
        await runs.record(conn, command, outcome.status, outcome.report)
        log.info("admin_command_run", operator_id=command.operator_id, command=command.command.value,
                 request_id=str(command.request_id), confirm=command.confirm, status=outcome.status,
                 summary=_summary(outcome.report))  # the whole report is in repair_runs and on the reply topic
        return outcome

    async def _prepare_run(self, command: c.AdminCommand) -> Write:
        name = command.command
        if name is AdminCommandName.DRIFT_REPORT:
            return await prepare_drift_report(self.engine, command, self.escalate_after)
        if name is AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS:
            return await prepare_sync(self.engine, command, self.venues, self.ask_for_s)
        if name is AdminCommandName.RESOLVE_PENDING:
            return await prepare_resolve_pending(self.engine, command, self.venues, self.not_found_windows,
                                                 self.ask_for_s)
        if name is AdminCommandName.RECONCILE_PAPER_POSITIONS:
            return reconcile_paper_positions(command)
        return fixed(Outcome("failed", {"error": "not_implemented", "detail": f"{name.value} is not available yet"}))


def _repeated(previous: Row) -> Outcome:
    report: dict[str, Any] = {**previous.report, "repeated_request": True}
    # Still awaiting the executor: the reply that completes the run answers this request too.
    return Outcome(previous.status, report, awaiting_executor=previous.status == AWAITING)


def _summary(report: dict) -> dict:
    """The report without its per-position lists: a 100k-position report is megabytes, too big for a log line."""
    return {key: value for key, value in report.items() if not isinstance(value, list)}
