"""The admins' repairs from the console: a signed command on the admin topic, run in the background, and its reply
shaped into tables for a page.

A command is signed here with the key the operator typed into the form, exactly as `egis repair` signs it
(`egis_common.admin_client`), and sent with the ledger's own Kafka login; the key is used for that one signature
and kept nowhere. The reply may take minutes (a venue asked about many orders), so the command runs as a task of
this process and its page waits for it a little at a time: a run lives in memory, for its own session only,
and is forgotten an hour after it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from egis_common import admin_client
from egis_common import contracts as c
from egis_common.kafka_login import client_options
from egis_common.logs import get_logger
from egis_common.runtime import Runtime
from egis_common.secrets import new_token

log = get_logger(__name__)
Name = c.AdminCommandName
KEPT = timedelta(hours=1)
MOST_RUNS = 200  # in memory at once; the oldest finished ones go first


@dataclass(frozen=True)
class Command:
    title: str
    summary: str
    changes_anything: bool = True  # a drift report only reads: no confirm step
    bot_scope: bool = True  # Sync Paper State works per paper account, never per bot


COMMANDS: dict[Name, Command] = {
    Name.DRIFT_REPORT: Command(
        "Drift report",
        "Positions whose facts disagree, and pending orders unresolved too long. It changes nothing.",
        changes_anything=False,
    ),
    Name.RESOLVE_PENDING: Command(
        "Resolve pending", "Looks orders of unknown outcome up on their venue and settles what is certain."
    ),
    Name.SYNC_WRONG_CLOSED_POSITIONS: Command(
        "Sync wrong closed positions",
        "Backfills the close facts closed positions lack, and closes open positions the exchange closed.",
    ),
    Name.RECONCILE_PAPER_POSITIONS: Command(
        "Sync Paper State",
        "Brings the paper venue's positions in line with its own fills, for every paper account. "
        "It changes no ledger position and calls no exchange.",
        bot_scope=False,
    ),
}
# The reconciler's refusals (reconciler.auth.Refusal), said for a person.
REFUSALS = {
    "unsigned": "the command carried no signature.",
    "unknown_operator": "it knows no operator of that name.",
    "bad_signature": "that key is not this operator's key.",
    "stale": "the command was too old when it arrived (check this server's clock).",
}

Reply = c.AdminReply | str | None  # the whole reply; a one-line error; None: no reply in time
Send = Callable[[c.AdminCommand, float], Awaitable[c.AdminReply | None]]


@dataclass
class Run:
    run_id: str
    token_id: UUID  # the session's token: only it may see the run
    command: c.AdminCommand
    wait_s: float
    started_at: datetime
    task: asyncio.Task[Reply] = field(repr=False)

    @property
    def name(self) -> Name:
        return self.command.command

    def reply(self) -> Reply:
        return self.task.result()


def sender(runtime: Runtime) -> Send:
    """Over Kafka as the ledger's principal, which may write the admin topic and read its replies."""
    settings = runtime.settings

    async def send(command: c.AdminCommand, wait_s: float) -> c.AdminReply | None:
        return await admin_client.request(settings.kafka_bootstrap_servers, command, wait_s, client_options(settings))

    return send


class Runs:
    """The runs of this process. `max_command_seconds` is the reconciler's (how long a reply may take);
    `page_wait_s`, how long a page waits for it; `reply_wait_s` replaces the wait a command's kind sets (tests)."""

    def __init__(
        self, send: Send, *, max_command_seconds: float, page_wait_s: float, reply_wait_s: float | None = None
    ) -> None:
        self.send = send
        self.max_command_seconds = max_command_seconds
        self.page_wait_s = page_wait_s
        self.reply_wait_s = reply_wait_s
        self._runs: dict[str, Run] = {}

    def start(
        self,
        token_id: UUID,
        name: Name,
        *,
        confirm: bool,
        bot_id: UUID | None,
        operator_id: str,
        operator_key: str,
    ) -> Run:
        command = admin_client.signed(
            c.AdminCommand(
                request_id=uuid4(),
                command=name,
                confirm=confirm,
                bot_id=bot_id,
                operator_id=operator_id,
                signature="",
            ),
            operator_key,
        )
        wait_s = self.reply_wait_s or admin_client.reply_timeout_s(name, self.max_command_seconds)
        self._forget_old()
        run = Run(
            new_token(), token_id, command, wait_s, datetime.now(UTC), asyncio.create_task(self._ask(command, wait_s))
        )
        self._runs[run.run_id] = run
        log.info(
            "console_repair_sent",
            caller=str(token_id),
            operator_id=operator_id,
            command=name.value,
            confirm=confirm,
            bot_id=str(bot_id) if bot_id else None,
            request_id=str(command.request_id),
        )
        return run

    def of(self, run_id: str, token_id: UUID) -> Run | None:
        run = self._runs.get(run_id)
        return run if run is not None and run.token_id == token_id else None

    async def _ask(self, command: c.AdminCommand, wait_s: float) -> Reply:
        try:
            return await self.send(command, wait_s)
        except Exception as error:  # Kafka unreachable, or the ledger's login refused: a line for the page
            log.warning("console_repair_not_sent", request_id=str(command.request_id), error=repr(error))
            return f"The command could not be sent over Kafka: {type(error).__name__}: {error}"

    def _forget_old(self) -> None:
        now = datetime.now(UTC)
        for run_id, run in list(self._runs.items()):
            if run.task.done() and (now - run.started_at > KEPT or len(self._runs) >= MOST_RUNS):
                del self._runs[run_id]

    async def finished(self, run: Run) -> bool:
        """Whether the run has its answer, waiting a page's while for it (the run goes on either way)."""
        if not run.task.done():
            await asyncio.wait({run.task}, timeout=self.page_wait_s)
        return run.task.done()


# --- the reply, for a page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    unchanged: int  # lines examined that would change (or changed) nothing: counted, not listed


def refusal(reply: c.AdminReply) -> str:
    reason = str(reply.report.get("reason", "no reason given"))
    return f"The reconciler refused the command: {REFUSALS.get(reason, reason)}"


def failure(reply: c.AdminReply) -> str:
    detail = reply.report.get("detail") or reply.report.get("error") or "no detail given"
    return f"The command failed: {detail}"


def summary(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(_heading(name), cell(value)) for name, value in report.items() if not isinstance(value, list)]


def tables(reply: c.AdminReply) -> list[Table]:
    """Each list of the report as a table: of a repair's lines, those that would change (dry run) or that changed."""
    return [_table(name, lines, reply.dry_run) for name, lines in reply.report.items() if isinstance(lines, list)]


def _table(name: str, lines: list[dict[str, Any]], dry_run: bool) -> Table:
    shown = [line for line in lines if _changes(line, dry_run)]
    columns = [key for key in dict.fromkeys(k for line in shown for k in line) if key not in _FLAGS]
    rows = [[cell(line.get(key)) for key in columns] for line in shown]
    return Table(_heading(name), [_heading(key) for key in columns], rows, len(lines) - len(shown))


_FLAGS = ("would_change", "changed", "sent", "backfill")  # what decides whether a line is shown, and bulk


def _changes(line: dict[str, Any], dry_run: bool) -> bool:
    if dry_run:
        return bool(line.get("would_change", True))
    if "changed" in line or "sent" in line:
        return bool(line.get("changed") or line.get("sent"))
    return True  # a list of findings (drift, what was settled automatically): every line is news


def _heading(key: str) -> str:
    return key.replace("_", " ").capitalize()


def cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if set(value) == {"qty", "entry_price"}:  # a paper holding
            return f"{value['qty']} @ {value['entry_price']}"
        return ", ".join(f"{_heading(k).lower()} {cell(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or "—"
    return str(value)
