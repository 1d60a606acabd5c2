"""One function per message the ledger handles: load state, ask the domain, persist.

Each runs inside the caller's transaction, after the inbox claim. Lock order
is always bot row first, then positions, so concurrent handlers for one bot
serialise instead of deadlocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.logs import get_logger
from egis_common.outbox import Outbox
from egis_common.topics import LEDGER_EVENTS, encode
from ledger import domain
from ledger import repository as repo
from ledger.domain import Outcome

log = get_logger(__name__)


@dataclass(frozen=True)
class Ledger:
    outbox: Outbox
    min_order_size_usd: Decimal
    budget_debug: bool = False

    def _debug(self):
        return log.debug if self.budget_debug else None

    async def _persist(self, conn: AsyncConnection, outcome: Outcome) -> Outcome:
        await repo.insert_positions(conn, outcome.created)
        await repo.update_positions(conn, outcome.positions)
        await self.outbox.add(conn, *outcome.messages)
        return outcome

    async def budget(self, conn: AsyncConnection, bot_id) -> domain.Budget | None:
        """The bot's budget breakdown, by the one formula."""
        initial = await repo.initial_budget(conn, bot_id)
        if initial is None:
            return None
        return domain.compute_budget(initial, await repo.active_positions(conn, bot_id), self._debug())

    async def reserve(self, conn: AsyncConnection, command: c.ReserveBudget) -> Outcome:
        """Preflight. The same intent always gets the same answer, and changes nothing twice."""
        previous = await repo.stored_answer(conn, command.intent_id)
        if previous is not None:
            answer = LEDGER_EVENTS.decode(previous).model_copy(update={"message_id": uuid4()})
            await self.outbox.add(conn, answer)
            return Outcome(messages=(answer,), note="repeated intent: the stored answer again")
        bot = await repo.lock_bot(conn, command.bot_id)
        bot_positions = await repo.active_positions(conn, command.bot_id) if bot else []
        holder = None
        if bot is not None and command.intent is c.IntentKind.OPEN:
            holder = await repo.account_symbol_holder(conn, bot.exchange, bot.exchange_account, command.symbol, bot.bot_id)
        outcome = domain.decide_reservation(
            command, bot, bot_positions, holder, uuid4(), self.min_order_size_usd, self._debug()
        )
        answer = outcome.messages[0]
        verdict = "rejected" if outcome.rejection else "reserved"
        reason = outcome.rejection.value if outcome.rejection else None
        await repo.store_answer(conn, command.intent_id, command.bot_id, verdict, reason, encode(answer))
        return await self._persist(conn, outcome)

    async def _locked(self, conn: AsyncConnection, bot_id, position_id):
        bot = await repo.lock_bot(conn, bot_id)
        position = await repo.position(conn, position_id) if bot else None
        if bot is None or position is None or position.bot_id != bot_id:
            return None, None, []
        others = [p for p in await repo.active_positions(conn, bot_id) if p.position_id != position_id]
        return bot, position, others

    async def apply_execution(self, conn: AsyncConnection, execution: c.Message) -> Outcome:
        bot, position, others = await self._locked(conn, execution.bot_id, execution.position_id)
        if position is None:
            return Outcome(note=f"no position {execution.position_id} of bot {execution.bot_id}")
        if isinstance(execution, c.OrderFilled):
            outcome = domain.apply_fill(position, execution, bot.initial_budget_usd, others)
        elif isinstance(execution, c.OrderRejected):
            reason = f"exchange_rejected:{execution.exchange_code}:{execution.reason}"
            outcome = (domain.apply_rejection(position, reason, bot.initial_budget_usd, others)
                       if domain.intent_owns(position, execution.intent_id) else Outcome(note="rejection of a settled intent"))
        else:  # OrderPendingReconciliation: the reservation stays held until the reconciler resolves it
            outcome = Outcome(note="pending reconciliation: reservation held")
        return await self._persist(conn, outcome)

    async def backfill(self, conn: AsyncConnection, command: c.BackfillClosure) -> Outcome:
        bot, position, others = await self._locked(conn, command.bot_id, command.position_id)
        if position is None:
            return Outcome(note=f"no position {command.position_id} of bot {command.bot_id}")
        return await self._persist(conn, domain.apply_backfill(position, command, bot.initial_budget_usd, others))

    async def release(self, conn: AsyncConnection, command: c.ReleaseReservation) -> Outcome:
        bot = await repo.lock_bot(conn, command.bot_id)
        position = await repo.position_holding_intent(conn, command.intent_id) if bot else None
        if position is None or not domain.intent_owns(position, command.intent_id):
            return Outcome(note="nothing reserved for this intent")
        others = [p for p in await repo.active_positions(conn, command.bot_id) if p.position_id != position.position_id]
        outcome = domain.apply_rejection(position, f"released:{command.reason}", bot.initial_budget_usd, others)
        return await self._persist(conn, outcome)
