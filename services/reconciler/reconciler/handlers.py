"""The reconciler's use cases for the messages it consumes and its periodic job, each top to bottom.

Entry points (what `flow.py` and `main.py` call):
    on_exchange_facts   a batch of ExchangeOrderFact, ExchangeAlgoOrderFact, ExchangeTradeFact: stored insert-only;
                        a close the exchange made on its own that they prove goes to the ledger (BackfillClosure)
    on_ledger_events    a batch of ledger events: the positions read model; a position opened after the exchange
                        had already closed it gets its backfill
    on_executions       a batch of executions: an OrderPendingReconciliation recorded, or settled by the
                        executor's own late OrderFilled or OrderRejected
    PendingResolver.run periodic: pending orders looked up on their venue and settled on a definitive answer

The operators' admin commands, and the executor's answer to a paper repair, are in `admin.py`.

Closures the exchange made on its own (a triggered take-profit or stop-loss, or a liquidation, that filled):
nobody else reports them (the executor placed the algo order, not the fill), so as soon as the facts prove
one, its backfill goes to the ledger, once. Closes of our own orders are the executor's to report; when that
fails, the sync-wrong-closed-positions command repairs them from the same evidence.

The pending resolver's run:
1. claim the orders that are due (never looked up, or their backoff has passed), pushing each one's next
   attempt out first, in a short transaction of its own: no later than just after the order's `not_after` or
   not-found window, and a paper order's no later than the next run;
2. ask each one's venue by client order id, holding no transaction (`look_up_all`, as resolve-pending);
3. in one transaction, settle on a definitive answer exactly as a confirmed resolve-pending does, with the
   ledger's command and the executor's `RecordResolution` in the outbox; keep what the venue said otherwise;
4. escalate what stayed unresolved past the limit (an error log line, once), and set the backlog gauges.
A settlement happens once whoever comes first (this job, another reconciler, an operator, the executor's own
late report): `pending.settle_decided` settles only an unsettled order, and only then sends anything.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.batches import process_batch
from egis_common.contracts import utc_now
from egis_common.logs import get_logger, ids_of
from egis_common.outbox import Inbox, Outbox, UnitOfWork
from egis_common.runtime import Runtime
from egis_common.topics import EXCHANGE_FACTS, EXECUTIONS, LEDGER_EVENTS
from egis_venues.port import Unknown
from reconciler import domain
from reconciler.adapters import pending, read_model, repository
from reconciler.adapters.venues import OUT_OF_TIME, OrderLookup, look_up
from reconciler.domain import AUTO, Backlog, Decision, NotFoundWindows, PendingOrder
from reconciler.metrics import CLOSURES_BACKFILLED, PENDING_SETTLED, count_facts, show_pending

log = get_logger(__name__)


async def on_exchange_facts(runtime: Runtime, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of facts in one transaction: stored, and the closes they prove sent to the ledger."""
    log_backfills(
        await process_batch(
            records, EXCHANGE_FACTS, runtime.uow, inbox, runtime.dead_letters, partial(ingest_facts, runtime.outbox)
        )
    )


async def ingest_facts(outbox: Outbox, conn: AsyncConnection, facts: list[c.Message]) -> list[c.BackfillClosure]:
    inserted = await repository.insert_facts(conn, facts)
    count_facts(Counter(repository.FACT_TABLES[type(fact)].name for fact in facts), inserted)
    backfills = await exchange_closures(conn, facts)
    await outbox.add(conn, *backfills)
    return backfills


async def on_ledger_events(runtime: Runtime, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of ledger events in one transaction: the read model, and the closes that waited for a position."""
    log_backfills(
        await process_batch(
            records,
            LEDGER_EVENTS,
            runtime.uow,
            inbox,
            runtime.dead_letters,
            partial(apply_ledger_events, runtime.outbox),
        )
    )


async def apply_ledger_events(
    outbox: Outbox, conn: AsyncConnection, events: list[c.Message]
) -> list[c.BackfillClosure]:
    await read_model.apply_events(conn, events)
    backfills = await after_ledger_events(conn, events)
    await outbox.add(conn, *backfills)
    return backfills


async def on_executions(runtime: Runtime, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of executions in one transaction: pending orders recorded, or settled by the executor."""
    await process_batch(records, EXECUTIONS, runtime.uow, inbox, runtime.dead_letters, record_executions)


async def record_executions(conn: AsyncConnection, executions: list[c.Message]) -> list[int]:
    return [await pending.record_executions(conn, executions)]


def log_backfills(backfills: list[c.BackfillClosure]) -> None:
    for backfill in backfills:
        CLOSURES_BACKFILLED.labels(backfill.evidence["route"].split(":")[0]).inc()
        log.info(
            "closure_backfilled",
            evidence=backfill.evidence,
            **ids_of(backfill),
        )


async def exchange_closures(conn: AsyncConnection, new_facts: Sequence[c.Message]) -> list[c.BackfillClosure]:
    """The backfills these facts complete, each recorded as sent; the caller puts them in the outbox."""
    order_ids = domain.order_ids_touched(new_facts)
    if not order_ids:
        return []
    client_ids = [
        *await repository.algo_clients_of(conn, order_ids),
        *await repository.entries_of_liquidated(conn, order_ids),
    ]
    intents = domain.intents_of(client_ids)
    return await backfills_for(conn, await read_model.load(conn, open_intents=intents) if intents else [])


async def after_ledger_events(conn: AsyncConnection, events: Sequence[c.Message]) -> list[c.BackfillClosure]:
    """A position the ledger opened after the exchange had already closed it: the facts were waiting."""
    opened = {e.position_id for e in events if isinstance(e, c.PositionOpened)}
    return await backfills_for(conn, await read_model.load(conn, position_ids=opened)) if opened else []


async def backfills_for(conn: AsyncConnection, positions: list[domain.PositionView]) -> list[c.BackfillClosure]:
    positions = [p for p in positions if p.status in ("open", "closing", "closed")]
    facts = await repository.facts_for(conn, positions)
    found = [
        b
        for b in (domain.closure(p, facts) for p in positions)
        if isinstance(b, c.BackfillClosure) and domain.made_by_exchange(b)
    ]
    return [b for b in found if await repository.sent_first_time(conn, b)]


@dataclass(frozen=True)
class ResolverRun:
    looked_up: int
    settled: list[tuple[PendingOrder, Decision]] = field(default_factory=list)
    escalated: list[PendingOrder] = field(default_factory=list)
    backlog: Backlog | None = None


@dataclass(frozen=True)
class PendingResolver:
    """The periodic job (started in `reconciler.main`): pending orders resolved without an operator."""

    uow: UnitOfWork
    outbox: Outbox
    venues: Mapping[str, OrderLookup]  # by exchange name, shared with the admin commands (one weight budget)
    not_found_windows: NotFoundWindows
    retry_wait: Callable[[int], timedelta]  # domain.retry_wait
    escalate_after: timedelta
    batch: int
    ask_for_s: float
    paper_retry_max: timedelta  # the run interval: see domain.look_up_backoff

    async def run(self) -> ResolverRun:
        looked_up, settled = await self.resolve_due()
        escalated, current = await self.escalate()
        return ResolverRun(looked_up, settled, escalated, current)

    async def resolve_due(self) -> tuple[int, list[tuple[PendingOrder, Decision]]]:
        async with self.uow.engine.begin() as conn:
            orders = await pending.claim_due(conn, utc_now(), self.batch, self._next_look_up)
        if not orders:
            return 0, []
        decisions, _stopped = await look_up_all(self.venues, orders, self.not_found_windows, self.ask_for_s)
        settled, undecided = [], []
        async with self.uow.begin() as conn:
            for order, decision in decisions:
                messages = await pending.settle_decided(conn, order, decision, AUTO, utc_now())
                await self.outbox.add(conn, *messages)
                (settled if messages else undecided).append((order, decision))
            await pending.note_lookups(conn, undecided)
        for order, decision in settled:
            PENDING_SETTLED.labels(AUTO, decision.resolution.value).inc()
            log.info(
                "pending_order_resolved",
                resolved_by=AUTO,
                resolution=decision.resolution.value,
                attempts=order.attempts,
                evidence=decision.evidence,
                **ids_of(order),
            )
        return len(orders), settled

    def _next_look_up(self, order: PendingOrder, now: datetime) -> datetime:
        backoff = domain.look_up_backoff(order, self.retry_wait(order.attempts), self.paper_retry_max)
        return domain.next_look_up(order, now, backoff, self.not_found_windows.of(order.exchange))

    async def escalate(self) -> tuple[list[PendingOrder], Backlog]:
        now = utc_now()
        async with self.uow.engine.begin() as conn:
            escalated = await pending.escalate(conn, now - self.escalate_after, now)
            current = domain.backlog(await pending.unresolved_since(conn), now, self.escalate_after)
        for order in escalated:
            log.error(
                "pending_order_unresolved",
                intent_id=str(order.intent_id),
                bot_id=str(order.bot_id),
                position_id=str(order.position_id),
                client_order_id=order.client_order_id,
                exchange=order.exchange,
                exchange_account=order.exchange_account,
                symbol=order.symbol,
                pending_since=order.pending_since.isoformat(),
                attempts=order.attempts,
                last_lookup=order.last_lookup,
            )
        show_pending(current)
        return escalated, current


async def look_up_all(
    venues: Mapping[str, OrderLookup], orders: list[PendingOrder], windows: NotFoundWindows, ask_for_s: float
) -> tuple[list[tuple[PendingOrder, Decision]], str | None]:
    """Each order's decision; after `ask_for_s` the rest are not looked up and stay unknown, saying why."""
    deadline, decisions, stopped = time.monotonic() + ask_for_s, [], None
    for order in orders:
        if stopped is None and time.monotonic() >= deadline:
            stopped = OUT_OF_TIME
        outcome = Unknown(stopped) if stopped is not None else await look_up(venues, order)
        decisions.append((order, domain.decide(order, outcome, utc_now(), windows.of(order.exchange))))
    return decisions, stopped
