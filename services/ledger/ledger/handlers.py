"""The ledger's use cases: one per message it handles, each top to bottom.

Entry points (what `flow.py` calls, one per subscriber or periodic job):
    on_ledger_commands   a batch of ReserveBudget, BackfillClosure, ReleaseReservation, ApplyFoundFill
    on_executions        a batch of OrderFilled, OrderRejected, OrderPendingReconciliation, ProtectiveOrdersPlaced
    on_signals_journaled a batch of SignalJournaled: the signal journal keeps them (ledger.journal)
    on_waiting_expiry    periodic: reservations that waited too long are refused (`wait_expired`)

The use case of each message is a method of `Ledger`: `reserve_batch` (ReserveBudget),
`backfill` (BackfillClosure), `release` (ReleaseReservation), `apply_found_fill`
(ApplyFoundFill), `apply_executions` (the executions). Each runs inside the caller's
transaction, after the inbox claim. Lock order is always bot row first, then positions,
so concurrent handlers for one bot serialise instead of deadlocking.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.batches import process_batch
from egis_common.failpoints import failpoint
from egis_common.logs import get_logger, ids_of
from egis_common.metrics import HANDLER_SECONDS
from egis_common.outbox import Inbox, Outbox
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTIONS, LEDGER_COMMANDS, LEDGER_EVENTS, SIGNAL_JOURNAL, encode
from ledger import domain, journal
from ledger import repository as repo
from ledger.domain import Outcome, Position
from ledger.metrics import count_preflight, count_refused_claim, show_budgets, show_waiting

log = get_logger(__name__)


async def on_ledger_commands(runtime: Runtime, ledger: Ledger, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of ledger commands in one transaction, then a log line and the metrics for each."""
    started = time.perf_counter()
    handled = await process_batch(
        records, LEDGER_COMMANDS, runtime.uow, inbox, runtime.dead_letters, ledger.handle_commands
    )
    failpoint("ledger.after_reservation_commit")
    report(handled)
    HANDLER_SECONDS.labels("ledger", "ledger_commands_batch").observe(time.perf_counter() - started)


async def on_executions(runtime: Runtime, ledger: Ledger, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of executions in one transaction, then a log line and the metrics for each."""
    started = time.perf_counter()
    handled = await process_batch(
        records, EXECUTIONS, runtime.uow, inbox, runtime.dead_letters, ledger.handle_executions
    )
    failpoint("ledger.after_execution_commit")
    report(handled)
    HANDLER_SECONDS.labels("ledger", "executions_batch").observe(time.perf_counter() - started)


async def on_signals_journaled(runtime: Runtime, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of journal entries in one transaction: kept for their owners to read, nothing decided."""
    started = time.perf_counter()

    async def keep(conn: AsyncConnection, entries: list[c.Message]) -> list[c.Message]:
        await journal.record(conn, [entry for entry in entries if isinstance(entry, c.SignalJournaled)])
        return entries

    await process_batch(records, SIGNAL_JOURNAL, runtime.uow, inbox, runtime.dead_letters, keep)
    HANDLER_SECONDS.labels("ledger", "signal_journal_batch").observe(time.perf_counter() - started)


async def on_waiting_expiry(runtime: Runtime, ledger: Ledger, older_than_seconds: float) -> None:
    """Periodic: reservations that waited too long behind an order in flight are refused (`wait_expired`)."""
    async with runtime.uow.begin() as conn:
        expired = await ledger.expire_waiting(conn, older_than_seconds)
    report(expired)
    async with runtime.uow.read() as conn:
        show_waiting(*await repo.waiting_gauge(conn))


def report(handled: list[tuple[c.Message, Outcome]]) -> None:
    """A log line per message handled (a command, an execution, or a reservation that waited), and the metrics."""
    for message, outcome in handled:
        if isinstance(message, c.ReserveBudget) and not outcome.waiting:
            count_preflight(outcome)
        if outcome.refusal is not None:  # a false claim, not a failure: nothing changed, nothing dead-lettered
            count_refused_claim(message, outcome.refusal)
            log.warning(
                "ledger_claim_refused",
                message=message.type,
                reason=outcome.refusal.value,
                detail=outcome.note,
                message_id=str(message.message_id),
                **ids_of(message),
            )
            continue
        event = "execution_applied" if type(message) in EXECUTIONS.messages else "ledger_command_handled"
        log.info(
            event,
            message=message.type,
            note=outcome.note,
            waiting=outcome.waiting,
            rejection=outcome.rejection.value if outcome.rejection else None,
            **ids_of(message),
        )
    show_budgets(outcome for _, outcome in handled)


@dataclass(frozen=True)
class Ledger:
    outbox: Outbox
    min_order_size_usd: Decimal
    budget_debug: bool = False

    def _debug(self):
        return log.debug if self.budget_debug else None

    async def _persist(self, conn: AsyncConnection, outcome: Outcome, cause: c.Message | None = None) -> Outcome:
        """The outcome's rows and messages; `cause`: the message decided, whose intent's pending order (if any)
        is settled when the outcome ended that intent's reservation."""
        await repo.insert_positions(conn, outcome.created)
        await repo.update_positions(conn, outcome.positions)
        await self.outbox.add(conn, *outcome.messages)
        if cause is not None and domain.settles_reservation(cause, outcome):
            await repo.settle_pending(conn, [cause])
        return outcome

    async def handle_commands(
        self, conn: AsyncConnection, commands: list[c.Message]
    ) -> list[tuple[c.Message, Outcome]]:
        """Ledger commands in their order; runs of reservations go through `reserve_batch` together."""
        results: list[tuple[c.Message, Outcome]] = []
        run: list[c.ReserveBudget] = []
        for command in [*commands, None]:
            if isinstance(command, c.ReserveBudget):
                run.append(command)
                continue
            if run:
                results.extend(zip(run, await self.reserve_batch(conn, run), strict=True))
                run = []
            outcome = None
            if isinstance(command, c.BackfillClosure):
                outcome = await self.backfill(conn, command)
            elif isinstance(command, c.ReleaseReservation):
                outcome = await self.release(conn, command)
            elif isinstance(command, c.ApplyFoundFill):
                outcome = await self.apply_found_fill(conn, command)
            if outcome is not None:
                results.append((command, outcome))
                results.extend(await self.resume_waiting(conn, outcome.positions))
        return results

    async def handle_executions(
        self, conn: AsyncConnection, executions: list[c.Message]
    ) -> list[tuple[c.Message, Outcome]]:
        """Executions, then the reservations that waited behind the orders they settled."""
        outcomes = await self.apply_executions(conn, executions)
        resumed = await self.resume_waiting(conn, [p for o in outcomes for p in o.positions])
        return [*zip(executions, outcomes, strict=True), *resumed]

    async def budget(self, conn: AsyncConnection, bot_id) -> domain.Budget | None:
        """The bot's budget breakdown, by the one formula."""
        initial = await repo.initial_budget(conn, bot_id)
        if initial is None:
            return None
        return domain.compute_budget(initial, await repo.active_positions(conn, bot_id), self._debug())

    async def reserve(self, conn: AsyncConnection, command: c.ReserveBudget) -> Outcome:
        return (await self.reserve_batch(conn, [command]))[0]

    async def reserve_batch(
        self,
        conn: AsyncConnection,
        commands: list[c.ReserveBudget],
        resumed: dict[tuple[UUID, str], Position] | None = None,
    ) -> list[Outcome]:
        """Preflight for many commands with a handful of queries; decisions stay one at a time, in order.

        The same intent always gets the same answer and changes nothing twice,
        whether it comes again in a later batch or in the same one. A reservation
        behind an order in flight on its bot's symbol waits (`domain.must_wait`),
        and asked again while it waits, it still waits. `resumed`: these commands
        are the ones that waited on each (bot, symbol), in arrival order, and the
        position there that just settled.
        """
        answers = await repo.stored_answers(conn, [command.intent_id for command in commands])
        state = await _PreflightState.load(conn, commands, with_waiting=resumed is None)
        outcomes, new_answers, new_waiting = [], [], []
        for command, new_position_id in zip(commands, _new_ids(len(commands)), strict=True):
            key = (command.bot_id, command.symbol)
            bot = state.bots.get(command.bot_id)
            positions = state.positions.get(command.bot_id, [])
            if command.intent_id in answers:
                outcomes.append(_repeat(answers[command.intent_id]))
                continue
            if command.intent_id in state.waiting_intents:
                outcomes.append(replace(domain.waiting(command), note="asked again while it waits"))
                continue
            if domain.must_wait(command, bot, positions, key in state.waiting_keys):
                state.waiting_keys.add(key)
                outcomes.append(domain.waiting(command))
                new_waiting.append(
                    {
                        "intent_id": command.intent_id,
                        "bot_id": command.bot_id,
                        "symbol": command.symbol,
                        "command": encode(command),
                    }
                )
                continue
            outcome = domain.decide_reservation(
                command,
                bot,
                positions,
                state.holder(command),
                new_position_id,
                self.min_order_size_usd,
                self._debug(),
                waited_for=(resumed or {}).get(key),
            )
            state.apply(outcome)
            answers[command.intent_id] = encode(outcome.messages[0])
            new_answers.append(_answer_row(command, outcome, answers[command.intent_id]))
            outcomes.append(outcome)
        await repo.store_answers(conn, new_answers)
        if resumed is None:
            await repo.start_waiting(conn, new_waiting)
        await repo.insert_positions(conn, [p for o in outcomes for p in o.created])
        await repo.update_positions(conn, [p for o in outcomes for p in o.positions])
        await self.outbox.add(conn, *domain.latest_budget_per_bot(m for o in outcomes for m in o.messages))
        failpoint("ledger.before_reservation_commit")
        return outcomes

    async def resume_waiting(
        self, conn: AsyncConnection, changed: Iterable[Position]
    ) -> list[tuple[c.Message, Outcome]]:
        """Reservations that waited behind an order that has now settled, decided in arrival order."""
        settled = {(p.bot_id, p.symbol): p for p in changed if p.status not in domain.IN_FLIGHT}
        rows = await repo.lock_waiting(conn, list(settled)) if settled else []
        if not rows:
            return []
        commands = [LEDGER_COMMANDS.decode(row.command) for row in rows]
        outcomes = await self.reserve_batch(conn, commands, resumed=settled)
        await repo.stop_waiting(
            conn, [cmd.intent_id for cmd, o in zip(commands, outcomes, strict=True) if not o.waiting]
        )
        return list(zip(commands, outcomes, strict=True))

    async def expire_waiting(
        self, conn: AsyncConnection, older_than_seconds: float, limit: int = 500
    ) -> list[tuple[c.Message, Outcome]]:
        """Reservations that waited too long are refused (`wait_expired`): nothing waits forever."""
        rows = await repo.lock_waiting_since(conn, older_than_seconds, limit)
        made = [
            (command, domain.wait_expired(command, row.waited_seconds))
            for row in rows
            for command in [LEDGER_COMMANDS.decode(row.command)]
        ]
        await repo.store_answers(conn, [_answer_row(cmd, o, encode(o.messages[0])) for cmd, o in made])
        await self.outbox.add(conn, *(m for _, o in made for m in o.messages))
        await repo.stop_waiting(conn, [cmd.intent_id for cmd, _ in made])
        return made

    async def _locked(self, conn: AsyncConnection, bot_id, position_id):
        bot = await repo.lock_bot(conn, bot_id)
        position = await repo.position(conn, position_id) if bot else None
        if bot is None or position is None or position.bot_id != bot_id:
            return None, None, []
        others = [p for p in await repo.active_positions(conn, bot_id) if p.position_id != position_id]
        return bot, position, others

    async def apply_executions(self, conn: AsyncConnection, executions: list[c.Message]) -> list[Outcome]:
        """Executions with a handful of queries, like `reserve_batch`; decisions stay one at a time, in order.

        Two executions for one position or one bot in the same batch see each
        other's effect, exactly as if they had come in two batches. An order
        pending reconciliation is kept while its position holds its intent's
        reservation, until a fill or failure of that intent settles it.
        """
        state = await _ExecutionState.load(conn, executions)
        outcomes, pending = [], []
        for execution in executions:
            if isinstance(execution, c.OrderPendingReconciliation) and state.holds(execution):
                pending.append(execution)
            outcomes.append(state.decide(execution))
        await repo.update_positions(conn, [p for o in outcomes for p in o.positions])
        await repo.record_pending(conn, pending)
        settled = [e for e, o in zip(executions, outcomes, strict=True) if domain.settles_reservation(e, o)]
        await repo.settle_pending(conn, settled)
        await self.outbox.add(conn, *domain.latest_budget_per_bot(m for o in outcomes for m in o.messages))
        failpoint("ledger.before_execution_commit")
        return outcomes

    async def apply_found_fill(self, conn: AsyncConnection, found: c.ApplyFoundFill) -> Outcome:
        """A fill the reconciler found for a pending order: applied like the executor's, so at most once, and only
        to the position of the bot whose intent sent that order."""
        bot, position, others = await self._locked(conn, found.bot_id, found.position_id)
        if position is None:
            return domain.unknown_position(found)
        if (refused := domain.found_fill_refusal(found, position)) is not None:
            return refused
        fill = c.OrderFilled(
            intent_id=found.intent_id,
            bot_id=found.bot_id,
            position_id=found.position_id,
            intent=found.intent,
            symbol=position.symbol,
            side=position.side,
            client_order_id=found.client_order_id,
            exchange_order_id=found.exchange_order_id,
            executed_qty=found.executed_qty,
            avg_price=found.avg_price,
            fee_usd=found.fee_usd,
            realised_pnl_usd=found.realised_pnl_usd,
            filled_at=found.filled_at,
        )
        return await self._persist(conn, domain.apply_fill(position, fill, bot.initial_budget_usd, others), found)

    async def backfill(self, conn: AsyncConnection, command: c.BackfillClosure) -> Outcome:
        bot, position, others = await self._locked(conn, command.bot_id, command.position_id)
        if position is None:
            return domain.unknown_position(command)
        return await self._persist(conn, domain.apply_backfill(position, command, bot.initial_budget_usd, others))

    async def release(self, conn: AsyncConnection, command: c.ReleaseReservation) -> Outcome:
        bot = await repo.lock_bot(conn, command.bot_id)
        position = await repo.position_holding_intent(conn, command.intent_id) if bot else None
        if position is None or not domain.intent_owns(position, command.intent_id):
            return Outcome(note="nothing reserved for this intent")
        others = [p for p in await repo.active_positions(conn, command.bot_id) if p.position_id != position.position_id]
        outcome = domain.apply_rejection(position, f"released:{command.reason}", bot.initial_budget_usd, others)
        return await self._persist(conn, outcome, command)


def _new_ids(count: int) -> list[UUID]:
    """Random (version 4) ids from one read of the system's random source; uuid4() reads once per id."""
    pool = os.urandom(16 * count)
    return [UUID(bytes=pool[at : at + 16], version=4) for at in range(0, len(pool), 16)]


def _repeat(stored: bytes) -> Outcome:
    answer = LEDGER_EVENTS.decode(stored).model_copy(update={"message_id": uuid4()})
    return Outcome(messages=(answer,), note="repeated intent: the stored answer again")


def _answer_row(command: c.ReserveBudget, outcome: Outcome, answer: bytes) -> dict:
    return {
        "intent_id": command.intent_id,
        "bot_id": command.bot_id,
        "answer": answer,
        "outcome": "rejected" if outcome.rejection else "reserved",
        "reason": outcome.rejection.value if outcome.rejection else None,
    }


@dataclass
class _PreflightState:
    """What a batch of reservations decides on, kept current as each decision lands."""

    bots: dict
    positions: dict
    holders: dict
    waiting_intents: set  # intents that already wait
    waiting_keys: set  # (bot id, symbol) behind which reservations wait

    @classmethod
    async def load(
        cls, conn: AsyncConnection, commands: list[c.ReserveBudget], *, with_waiting: bool = True
    ) -> _PreflightState:
        bots = await repo.lock_bots(conn, {command.bot_id for command in commands})
        positions = await repo.active_positions_of(conn, list(bots))
        # The batch's own bots' positions are loaded already: ask the database only for the other bots'.
        accounts = {(b.exchange, b.exchange_account) for b in bots.values()}
        holders = await repo.active_holders(conn, accounts, except_bots=list(bots))
        holders.update({(p.exchange, p.exchange_account, p.symbol): p.bot_id for ps in positions.values() for p in ps})
        waiting = await repo.waiting_of_bots(conn, list(bots)) if with_waiting and bots else []
        return cls(bots, positions, holders, {w.intent_id for w in waiting}, {(w.bot_id, w.symbol) for w in waiting})

    def holder(self, command: c.ReserveBudget):
        bot = self.bots.get(command.bot_id)
        if bot is None:
            return None
        holder = self.holders.get((bot.exchange, bot.exchange_account, command.symbol))
        return holder if holder != bot.bot_id else None

    def apply(self, outcome: Outcome) -> None:
        for created in outcome.created:
            self.positions[created.bot_id].append(created)
            self.holders[(created.exchange, created.exchange_account, created.symbol)] = created.bot_id
        for changed in outcome.positions:
            self.positions[changed.bot_id] = [
                changed if p.position_id == changed.position_id else p for p in self.positions[changed.bot_id]
            ]


@dataclass
class _ExecutionState:
    """What a batch of executions decides on: its bots, locked, and their positions, kept current."""

    bots: dict
    positions: dict  # bot id -> position id -> position: the batch's targets and every active one

    @classmethod
    async def load(cls, conn: AsyncConnection, executions: list[c.Message]) -> _ExecutionState:
        bots = await repo.lock_bots(conn, {execution.bot_id for execution in executions})
        targets = await repo.lock_positions(conn, {e.position_id for e in executions if e.bot_id in bots})
        positions = {
            bot_id: {p.position_id: p for p in active}
            for bot_id, active in (await repo.active_positions_of(conn, list(bots))).items()
        }
        for target in targets:
            positions.setdefault(target.bot_id, {})[target.position_id] = target
        return cls(bots, positions)

    def holds(self, execution: c.OrderPendingReconciliation) -> bool:
        """True when the execution's position, as decided so far, still holds its intent's reservation."""
        position = self.positions.get(execution.bot_id, {}).get(execution.position_id)
        return (
            execution.bot_id in self.bots and position is not None and domain.intent_owns(position, execution.intent_id)
        )

    def decide(self, execution: c.Message) -> Outcome:
        """The domain's decision on one execution, given everything decided before it in the batch."""
        bot = self.bots.get(execution.bot_id)
        mine = self.positions.get(execution.bot_id, {})
        position = mine.get(execution.position_id)
        if bot is None or position is None:
            return Outcome(note=f"no position {execution.position_id} of bot {execution.bot_id}")
        others = [p for p in mine.values() if p.status in domain.ACTIVE and p.position_id != position.position_id]
        outcome = domain.decide_execution(execution, position, bot.initial_budget_usd, others)
        for changed in outcome.positions:
            mine[changed.position_id] = changed
        return outcome
