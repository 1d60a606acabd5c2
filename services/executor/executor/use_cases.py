"""One method per thing the executor handles: new intents, the ledger's answers to them, and the
reconciler's resolutions of pending orders.

Intents and resolutions are handled inside the caller's transaction (after the inbox claim).
The ledger's answers are not: a reservation leads to an exchange call, which
never happens inside a database transaction (see `executor.submission`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.contracts import utc_now
from egis_common.outbox import Inbox, Outbox, UnitOfWork
from executor import domain
from executor.adapters import repository as repo
from executor.domain import NOTHING, STALE_SUBMISSION, Decision, Intent
from executor.domain import IntentStatus as S
from egis_venues.port import ExchangePort
from executor.submission import Submission

ANSWERS = (c.BudgetReserved, c.PreflightRejected)


@dataclass
class Executor:
    uow: UnitOfWork
    outbox: Outbox
    answers_inbox: Inbox
    exchanges: Mapping[c.ExchangeName, ExchangePort]
    submission: Submission

    async def receive_intents(self, conn: AsyncConnection,
                              messages: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        """New intents ask the ledger for a reservation; an intent seen before changes nothing."""
        first: dict = {}
        for message in messages:
            first.setdefault(message.intent_id, message)
        made = [(m, domain.receive(m, frozenset(self.exchanges))) for m in first.values()]
        inserted = await repo.insert_new(conn, [d.intent for _, d in made])
        made = [(m, d if m.intent_id in inserted else Decision(note="intent seen before")) for m, d in made]
        await self.outbox.add(conn, *(msg for _, d in made for msg in d.messages))
        return made

    async def record_resolutions(self, conn: AsyncConnection,
                                 messages: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        """The reconciler settled pending orders: each resolution recorded once, the first standing."""
        ids = [m.intent_id for m in messages]
        current = await repo.load(conn, ids, lock=True)
        unresolved = await repo.unresolved_pending_of(conn, ids)
        made, now = [], utc_now()
        for message in messages:
            decision = domain.resolved(current.get(message.intent_id), message.intent_id in unresolved, message,
                                          now, self.submission.resend)
            if decision.resolved is not None:
                unresolved.discard(message.intent_id)
            if decision.intent is not None:
                current[message.intent_id] = decision.intent
            made.append((message, decision))
        await repo.persist(conn, self.outbox, [d for _, d in made])
        return made

    async def handle_answers(self, messages: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        """The ledger's answers to our reservation commands; every other ledger event is ignored."""
        answers = [m for m in messages if isinstance(m, ANSWERS)]
        if not answers:
            return []
        async with self.uow.read() as conn:  # unlocked: tx1 and tx2 read them again, locked
            known = await repo.load(conn, [a.intent_id for a in answers])
        to_submit: dict = {}
        for answer in answers:
            intent = known.get(answer.intent_id)
            if (isinstance(answer, c.BudgetReserved) and intent is not None
                    and intent.status is S.PREFLIGHT_REQUESTED and answer.intent_id not in to_submit):
                to_submit[answer.intent_id] = (intent, answer)
        # A copy of a chosen answer is left to the submission's own claim: were it claimed here, a crash
        # before the outcome is recorded would leave nothing unclaimed to find the intent `submitting`.
        chosen = {answer.message_id for _, answer in to_submit.values()}
        others = [a for a in answers if a.message_id not in chosen and a.intent_id in known]
        return [*await self._bookkeeping(others), *await self.submission.submit(list(to_submit.values()))]

    async def sweep_stale_submissions(self, older_than_seconds: float) -> list[Decision]:
        """Intents left `submitting` with no answer coming again (its message dead-lettered): to reconciliation."""
        async with self.uow.begin() as conn:
            stale = await repo.stale_submissions(conn, older_than_seconds)
            made = [domain.pending(intent, STALE_SUBMISSION, None) for intent in stale]
            await repo.persist(conn, self.outbox, made)
        return made

    async def resend_closes(self, limit: int) -> list[Decision]:
        """Closes the venue did not execute, whose time to be sent again has come (see Submission.resend_due)."""
        return await self.submission.resend_due(limit)

    async def ask_again_for_reservations(self, older_than_seconds: float, limit: int) -> list[Decision]:
        """Intents still waiting for the ledger's answer long after asking: the same reservation again."""
        async with self.uow.begin() as conn:
            due = await repo.reservations_due_again(conn, older_than_seconds, limit)
            made = [domain.ask_again(intent) for intent in due]
            await repo.persist(conn, self.outbox, made)
        return made

    async def _bookkeeping(self, answers: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        """Answers that lead to no exchange call: a refusal, a repeat, or an interrupted submission."""
        if not answers:
            return []
        made = []
        async with self.uow.begin() as conn:
            claimed = await self.answers_inbox.claim_many(conn, [a.message_id for a in answers])
            current = await repo.load(conn, [a.intent_id for a in answers], lock=True)
            for answer in (a for a in answers if a.message_id in claimed):
                decision = _answered(current[answer.intent_id], answer)
                if decision.intent is not None:
                    current[answer.intent_id] = decision.intent
                made.append((answer, decision))
            await repo.persist(conn, self.outbox, [d for _, d in made])
        return made


def _answered(intent: Intent, answer: c.Message) -> Decision:
    if isinstance(answer, c.PreflightRejected):
        return domain.preflight_rejected(intent, answer)
    if intent.status is S.SUBMITTING:  # we may have called the exchange before a crash: never again
        return domain.interrupted(intent)
    return NOTHING
