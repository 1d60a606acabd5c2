"""The signal_router's use cases: one per message it handles, each top to bottom.

    on_signals_received  a batch of SignalReceived: drop duplicates, route, hand the decisions (and their
                         journal entries, SignalJournaled) to the outbox
    on_bot_record        a record of the bots topic (a BotSnapshot or a tombstone): the routing view follows it

The webhook's use case (a POST in, a SignalReceived out) is `gateway.Gateway.accept`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.batches import process_batch
from egis_common.contracts import BotSnapshot, OrderIntent, SignalReceived, SignalSkipped, SignalSkipReason, utc_now
from egis_common.failpoints import failpoint
from egis_common.logs import get_logger, ids_of
from egis_common.metrics import HANDLER_SECONDS
from egis_common.outbox import Inbox, Outbox
from egis_common.runtime import Runtime
from egis_common.topics import SIGNALS_RECEIVED
from signal_router import domain, repository
from signal_router.bots import BotView
from signal_router.metrics import BOTS_KNOWN, SIGNALS_ROUTED, SIGNALS_SKIPPED

log = get_logger(__name__)
GROUP = "signal_router"
Decided = list[tuple[SignalReceived, OrderIntent | SignalSkipped]]


async def on_signals_received(
    runtime: Runtime, view: BotView, inbox: Inbox, max_lag: timedelta, records: Sequence[Any]
) -> None:
    """A batch of signals in one transaction (inbox, dedup keys, outbox), then a log line and a metric each."""
    started = time.perf_counter()

    async def route_batch(conn: AsyncConnection, signals: list[SignalReceived]) -> Decided:
        return await route(conn, runtime.outbox, view, max_lag, signals)

    decided = await process_batch(records, SIGNALS_RECEIVED, runtime.uow, inbox, runtime.dead_letters, route_batch)
    failpoint("signal_router.after_commit")
    HANDLER_SECONDS.labels(GROUP, "signals_received_batch").observe(time.perf_counter() - started)
    for signal, decision in decided:
        report(signal, decision)


async def route(
    conn: AsyncConnection, outbox: Outbox, view: BotView, max_lag: timedelta, signals: list[SignalReceived]
) -> Decided:
    """Each signal routed by the domain; one whose dedup key was taken before is a duplicate instead."""
    now = utc_now()
    decided = [(signal, domain.route(signal, view.get(signal.bot_id), now, max_lag)) for signal in signals]
    taken = await repository.claim_signals(conn, decided)
    decided = [
        (signal, decision if free else domain.skip(signal, SignalSkipReason.DUPLICATE_SIGNAL, "seen before"))
        for (signal, decision), free in zip(decided, taken, strict=True)
    ]
    journal = [domain.journaled(signal, decision) for signal, decision in decided]
    await outbox.add(conn, *(decision for _, decision in decided), *journal)
    failpoint("signal_router.before_commit")
    return decided


def on_bot_record(view: BotView, bot_id: UUID, snapshot: BotSnapshot | None) -> None:
    """A bot's latest snapshot replaces the one in the view; a tombstone removes the bot."""
    if snapshot is None:
        view.remove(bot_id)
    else:
        view.apply(snapshot)
    BOTS_KNOWN.set(len(view))


def report(signal: SignalReceived, decision: OrderIntent | SignalSkipped) -> None:
    if isinstance(decision, OrderIntent):
        SIGNALS_ROUTED.labels(decision.intent.value).inc()
        log.info(
            "signal_routed",
            intent=decision.intent.value,
            symbol=decision.symbol,
            dedup_key=signal.dedup_key,
            **ids_of(decision),
        )
    else:
        SIGNALS_SKIPPED.labels(decision.reason.value).inc()
        log.info(
            "signal_skipped",
            reason=decision.reason.value,
            detail=decision.detail,
            signal_key=signal.signal_key,
            dedup_key=signal.dedup_key,
        )
