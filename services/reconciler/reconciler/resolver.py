"""Pending orders resolved without an operator: the reconciler's periodic job (started in `reconciler.main`).

One run, top to bottom:
1. claim the orders that are due (never looked up, or their backoff has passed), pushing each one's next
   attempt out first, in a short transaction of its own;
2. ask each one's venue by client order id, holding no transaction (`commands.look_up_all`, as resolve-pending);
3. in one transaction, settle on a definitive answer exactly as a confirmed resolve-pending does, with the
   ledger's command and the executor's `RecordResolution` in the outbox; keep what the venue said otherwise;
4. escalate what stayed unresolved past the limit (an error log line, once), and set the backlog gauges.

A settlement happens once whoever comes first (this job, another reconciler, an operator, the executor's own
late report): `pending.settle_decided` settles only an unsettled order, and only then sends anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from egis_common.contracts import utc_now
from egis_common.logs import get_logger
from egis_common.outbox import Outbox, UnitOfWork

from reconciler.adapters import pending
from reconciler.commands import OrderLookup, look_up_all
from reconciler.domain import AUTO, Backlog, Decision, NotFoundWindows, PendingOrder, backlog, next_look_up
from reconciler.metrics import PENDING_SETTLED, show_pending

log = get_logger(__name__)


@dataclass(frozen=True)
class ResolverRun:
    looked_up: int
    settled: list[tuple[PendingOrder, Decision]] = field(default_factory=list)
    escalated: list[PendingOrder] = field(default_factory=list)
    backlog: Backlog | None = None


@dataclass(frozen=True)
class PendingResolver:
    uow: UnitOfWork
    outbox: Outbox
    venues: Mapping[str, OrderLookup]  # by exchange name, shared with the admin commands (one weight budget)
    not_found_windows: NotFoundWindows
    retry_wait: Callable[[int], timedelta]  # resolution.retry_wait
    escalate_after: timedelta
    batch: int
    ask_for_s: float

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
            log.info("pending_order_resolved", resolved_by=AUTO, intent_id=str(order.intent_id),
                     bot_id=str(order.bot_id), resolution=decision.resolution.value, attempts=order.attempts,
                     evidence=decision.evidence)
        return len(orders), settled

    def _next_look_up(self, order: PendingOrder, now: datetime) -> datetime:
        return next_look_up(order, now, self.retry_wait(order.attempts), self.not_found_windows.of(order.exchange))

    async def escalate(self) -> tuple[list[PendingOrder], Backlog]:
        now = utc_now()
        async with self.uow.engine.begin() as conn:
            escalated = await pending.escalate(conn, now - self.escalate_after, now)
            current = backlog(await pending.unresolved_since(conn), now, self.escalate_after)
        for order in escalated:
            log.error("pending_order_unresolved", intent_id=str(order.intent_id), bot_id=str(order.bot_id),
                      position_id=str(order.position_id), client_order_id=order.client_order_id,
                      exchange=order.exchange, exchange_account=order.exchange_account, symbol=order.symbol,
                      pending_since=order.pending_since.isoformat(), attempts=order.attempts,
                      last_lookup=order.last_lookup)
        show_pending(current)
        return escalated, current
