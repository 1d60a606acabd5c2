"""From a reservation to the exchange and back, never inside a database transaction.

    plan      market data from the venue (outside any transaction): the order, or why none can be sent
              (executor.planning)
    tx1       the attempt, durably: `submitting` with its client order id and quantity; commit
    call      the exchange (concurrently for a batch, at most `concurrency` calls at once unless the
              port batches calls itself), bounded by a timeout: Filled | Rejected | Unknown
    tx2       the outcome, the execution message, the inbox claim; commit. Tried again while it fails
              for a transient reason (the database unavailable), for at most `outcome_retry_seconds`:
              the exchange has answered, and only a recorded answer spares the order a reconciliation
    rescue    tx2 failed: `pending_reconciliation` holding what the exchange returned, in a fresh
              transaction; if even that fails, raise: the answer is redelivered and, finding the
              intent `submitting`, marks it pending without calling the exchange again
    stops     take-profit and stop-loss of a filled open

A close the venue did not execute waits `resend_due` and is sent again by `resend_due` (a periodic job): tx1
picks the due ones and records them `submitting`, then the same call and tx2. Such an attempt comes from
no ledger answer, so it claims nothing in the inbox; a crash between its tx1 and tx2 leaves it
`submitting`, which the stale-submission sweep hands to reconciliation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.contracts import utc_now
from egis_common.failpoints import failpoint
from egis_common.failures import transient_retrying
from egis_common.logs import get_logger
from egis_common.outbox import Inbox, Outbox, UnitOfWork
from executor import domain
from executor.adapters import repository as repo
from executor.domain import Decision, Intent, ResendPolicy
from egis_venues.port import ExchangePort, OrderOutcome, Rejected, Unknown
from executor.planning import Attempt, Planner, timed
from executor.stops import place_stops

log = get_logger(__name__)
Hook = Callable[[AsyncConnection, list[Decision]], Awaitable[None]]
Made = tuple[c.Message | None, Decision]  # the ledger's answer that led to it; None for a close sent again


@dataclass
class Submission:
    uow: UnitOfWork
    outbox: Outbox
    inbox: Inbox
    exchanges: Mapping[c.ExchangeName, ExchangePort]
    timeout_seconds: float
    concurrency: int
    outcome_retry_seconds: float
    resend: ResendPolicy
    # TEST ONLY: awaited inside tx2 just before it commits; raising there injects a failed commit.
    before_outcome_commit: Hook | None = None
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def submit(self, batch: list[tuple[Intent, c.BudgetReserved]]) -> list[Made]:
        if not batch:
            return []
        attempts = await Planner(self.exchanges, self.timeout_seconds).plan(batch)
        started, refused = await self._record_attempts(attempts)
        failpoint("executor.after_attempt_commit")
        outcomes = await asyncio.gather(*(self._call(attempt) for attempt in started))
        if started:
            failpoint("executor.after_exchange_call")
        settled = await self._settle(list(zip(started, outcomes, strict=True)))
        failpoint("executor.after_outcome_commit")
        rules = {a.intent.intent_id: a.rules for a in started}
        await place_stops(self.uow, self.outbox, self.exchanges,
                          [(d.intent, rules[d.intent.intent_id]) for _, d in settled if d.intent is not None])
        return [*refused, *settled]

    async def resend_due(self, limit: int) -> list[Decision]:
        """Closes due to be sent again (at most `limit`): tx1 picks and records them, then call and tx2."""
        async with self.uow.begin() as conn:
            due = await repo.resends_due(conn, limit)
            made = [domain.resending(intent) for intent in due]
            await repo.persist(conn, self.outbox, made)
        started = [Attempt(d.intent, None, domain.resent_order(d.intent)) for d in made if d.intent is not None]
        outcomes = await asyncio.gather(*(self._call(attempt) for attempt in started))
        return [decision for _, decision in await self._settle(list(zip(started, outcomes, strict=True)))]

    async def _record_attempts(self, attempts: list[Attempt]) -> tuple[list[Attempt], list[Made]]:
        """tx1: every order about to be sent is `submitting`; every order that cannot be sent is rejected."""
        started, refused, made = [], [], []
        async with self.uow.begin() as conn:
            current = await repo.load(conn, [a.intent.intent_id for a in attempts], lock=True)
            not_sent = [a for a in attempts if isinstance(a.order, Rejected)]
            claimed = await self.inbox.claim_many(conn, [a.answer.message_id for a in not_sent])
            for attempt in attempts:
                intent = current[attempt.intent.intent_id]
                if isinstance(attempt.order, Rejected):
                    if attempt.answer.message_id in claimed:
                        refused.append((attempt.answer, domain.not_placed(intent, attempt.answer, attempt.order)))
                    continue
                decision = domain.submitting(intent, attempt.answer, attempt.order, utc_now())
                if decision.intent is not None:  # still ours to submit: nobody got there first
                    started.append(replace(attempt, intent=decision.intent))
                    made.append(decision)
            await repo.persist(conn, self.outbox, [*made, *(d for _, d in refused)])
            failpoint("executor.before_attempt_commit")
        return started, refused

    async def _call(self, attempt: Attempt) -> OrderOutcome:
        port = self.exchanges[attempt.intent.exchange]
        async with contextlib.nullcontext() if getattr(port, "batches_concurrent_calls", False) else self._slots:
            try:
                failpoint("executor.before_exchange_call")
                return await timed(port.place_market_order(attempt.order), attempt.intent.exchange,
                                   "place_market_order", self.timeout_seconds)
            except TimeoutError:
                return Unknown("timeout", {"timeout_seconds": self.timeout_seconds})
            except Exception as error:  # an adapter must not raise; if one does, the outcome is unknown
                log.exception("exchange_adapter_raised", intent_id=str(attempt.intent.intent_id))
                return Unknown(f"adapter_error: {type(error).__name__}", {"error": str(error)[:500]})

    async def _settle(self, results: list[tuple[Attempt, OrderOutcome]]) -> list[Made]:
        """tx2 for the whole batch, again while the database is unavailable; if it still fails, one transaction
        per order, and a rescue for any that fails again."""
        if not results:
            return []
        try:
            async for attempt in transient_retrying("record_outcomes", hold_seconds=self.outcome_retry_seconds):
                with attempt:
                    return await self._settle_together(results)
        except Exception as error:
            log.warning("recording_outcomes_failed_retrying_one_by_one", orders=len(results), error=repr(error))
        made: list[Made] = []
        for result in results:
            try:
                made.extend(await self._settle_together([result]))
            except Exception as error:
                log.exception("recording_outcome_failed", intent_id=str(result[0].intent.intent_id))
                made.append(await self._rescue(*result, error))
        return made

    async def _settle_together(self, results: list[tuple[Attempt, OrderOutcome]]) -> list[Made]:
        async with self.uow.begin() as conn:
            await self.inbox.claim_many(conn, _answered([attempt for attempt, _ in results]))
            current = await repo.load(conn, [attempt.intent.intent_id for attempt, _ in results], lock=True)
            now = utc_now()
            made = [(a.answer, domain.settle(current[a.intent.intent_id], outcome, now, self.resend))
                    for a, outcome in results]
            await repo.persist(conn, self.outbox, [d for _, d in made])
            if self.before_outcome_commit is not None:
                await self.before_outcome_commit(conn, [d for _, d in made])
            failpoint("executor.before_outcome_commit")
        return made

    async def _rescue(self, attempt: Attempt, outcome: OrderOutcome, error: Exception) -> Made:
        """What the exchange returned survives as a pending record; raising here means redelivery."""
        async with self.uow.begin() as conn:
            await self.inbox.claim_many(conn, _answered([attempt]))
            intent = (await repo.load(conn, [attempt.intent.intent_id], lock=True))[attempt.intent.intent_id]
            decision = domain.recording_failed(intent, outcome, repr(error))
            await repo.persist(conn, self.outbox, [decision])
        return attempt.answer, decision


def _answered(attempts: list[Attempt]) -> list:
    """The message ids of the ledger's answers these attempts came from (a close sent again came from none)."""
    return [attempt.answer.message_id for attempt in attempts if attempt.answer is not None]
