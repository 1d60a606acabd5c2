"""The reconciler's wiring. What it consumes and produces: the generated list in the service's README.md."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from egis_common import contracts as c
from egis_common.batches import process_batch
from egis_common.broker import KafkaRecords, batch_subscriber, subscriber_options
from egis_common.logs import get_logger
from egis_common.outbox import Outbox
from egis_common.runtime import Runtime
from egis_common.topics import ADMIN_COMMANDS, EXCHANGE_FACTS, EXECUTIONS, LEDGER_EVENTS, PAPER_REPAIRS
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.binance.weights import WeightBudget
from egis_venues.paper.lookup import PaperLookup
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler import closures
from reconciler.adapters import pending, read_model, repository
from reconciler.admin import Admin
from reconciler.commands import OrderLookup
from reconciler.domain import AWAITING, NotFoundWindows, retry_wait
from reconciler.metrics import CLOSURES_BACKFILLED, count_facts
from reconciler.resolver import PendingResolver
from reconciler.settings import ReconcilerSettings

log = get_logger(__name__)
GROUP = "reconciler"


def build_venues(settings: ReconcilerSettings, engine: AsyncEngine) -> dict[str, OrderLookup]:
    """Read-only look-ups by exchange. The paper venue's tables are in this database: read with our engine."""
    venues: dict[str, OrderLookup] = {c.ExchangeName.PAPER.value: PaperLookup(engine)}
    if settings.binance_accounts:
        venues[c.ExchangeName.BINANCE_USDM.value] = BinanceExchange(
            settings.binance_accounts, live=settings.binance_live, base_url=settings.binance_base_url,
            weights=WeightBudget(settings.binance_weight_budget_per_minute))
    return venues


def configured_venues(runtime: Runtime, venues: dict[str, OrderLookup] | None = None) -> dict[str, OrderLookup]:
    """`venues` replace the configured look-ups of the same exchanges (tests bring a local Binance)."""
    return {**build_venues(runtime.settings, runtime.engine), **(venues or {})}  # type: ignore[arg-type]


def build_admin(runtime: Runtime, venues: dict[str, OrderLookup] | None = None) -> Admin:
    return _admin(runtime, configured_venues(runtime, venues))


def build_resolver(runtime: Runtime, venues: dict[str, OrderLookup] | None = None) -> PendingResolver:
    return _resolver(runtime, configured_venues(runtime, venues))


def _admin(runtime: Runtime, venues: dict[str, OrderLookup]) -> Admin:
    settings: ReconcilerSettings = runtime.settings  # type: ignore[assignment]
    return Admin(runtime.engine, runtime.outbox, settings.operator_keys,
                 timedelta(seconds=settings.admin_command_max_age_seconds), venues,
                 not_found_windows(settings), settings.admin_ask_for_s(),
                 settings.admin_reply_part_bytes, timedelta(seconds=settings.pending_escalate_after_seconds))


def _resolver(runtime: Runtime, venues: dict[str, OrderLookup]) -> PendingResolver:
    settings: ReconcilerSettings = runtime.settings  # type: ignore[assignment]
    return PendingResolver(
        runtime.uow, runtime.outbox, venues, not_found_windows(settings),
        retry_wait(settings.pending_retry_initial_seconds, settings.pending_retry_max_seconds),
        timedelta(seconds=settings.pending_escalate_after_seconds), settings.pending_resolve_batch,
        settings.pending_resolve_max_seconds)


def not_found_windows(settings: ReconcilerSettings) -> NotFoundWindows:
    return NotFoundWindows(remote=timedelta(seconds=settings.pending_not_found_window_seconds),
                           paper=timedelta(seconds=settings.paper_not_found_window_seconds))


def admin_subscriber_options(settings: ReconcilerSettings) -> dict[str, Any]:
    """A command may run for minutes: the consumer must not be taken for dead meanwhile."""
    return {**subscriber_options(GROUP), "max_poll_interval_ms": settings.admin_max_poll_interval_ms()}


def fact_ingestion(outbox: Outbox):
    async def ingest_facts(conn, facts: list[c.Message]) -> list[c.BackfillClosure]:
        inserted = await repository.insert_facts(conn, facts)
        count_facts(Counter(repository.FACT_TABLES[type(fact)].name for fact in facts), inserted)
        backfills = await closures.exchange_closures(conn, facts)
        await outbox.add(conn, *backfills)
        return backfills

    return ingest_facts


def ledger_events_application(outbox: Outbox):
    async def apply_ledger_events(conn, events: list[c.Message]) -> list[c.BackfillClosure]:
        await read_model.apply_events(conn, events)
        backfills = await closures.after_ledger_events(conn, events)
        await outbox.add(conn, *backfills)
        return backfills

    return apply_ledger_events


def log_backfills(backfills: list[c.BackfillClosure]) -> None:
    for backfill in backfills:
        CLOSURES_BACKFILLED.labels(backfill.evidence["route"].split(":")[0]).inc()
        log.info("closure_backfilled", bot_id=str(backfill.bot_id), position_id=str(backfill.position_id),
                 evidence=backfill.evidence)


async def record_executions(conn, executions: list[c.Message]) -> list[int]:
    return [await pending.record_executions(conn, executions)]


def register(runtime: Runtime, venues: dict[str, OrderLookup] | None = None) -> PendingResolver:
    """The subscribers; returns the pending resolver for the composition root to run periodically."""
    settings: ReconcilerSettings = runtime.settings  # type: ignore[assignment]
    # One set of look-ups for the admin commands and the resolver: one weight budget per venue in this process.
    venues = configured_venues(runtime, venues)
    admin, resolver = _admin(runtime, venues), _resolver(runtime, venues)
    ingest_facts = fact_ingestion(runtime.outbox)
    apply_ledger_events = ledger_events_application(runtime.outbox)
    executions_inbox = runtime.inbox("reconciler.executions")
    facts_inbox = runtime.inbox("reconciler.facts")
    events_inbox = runtime.inbox("reconciler.ledger-events")
    admin_inbox = runtime.inbox("reconciler.admin")
    repairs_inbox = runtime.inbox("reconciler.paper-repairs")

    @batch_subscriber(runtime.broker, EXCHANGE_FACTS.name, GROUP)
    async def on_exchange_facts(msg: KafkaRecords) -> None:
        backfills = await process_batch(msg.raw_message, EXCHANGE_FACTS, runtime.uow, facts_inbox,
                                        runtime.dead_letters, ingest_facts)
        log_backfills(backfills)

    @batch_subscriber(runtime.broker, LEDGER_EVENTS.name, GROUP)
    async def on_ledger_events(msg: KafkaRecords) -> None:
        log_backfills(await process_batch(msg.raw_message, LEDGER_EVENTS, runtime.uow, events_inbox,
                                          runtime.dead_letters, apply_ledger_events))

    @batch_subscriber(runtime.broker, EXECUTIONS.name, GROUP)
    async def on_executions(msg: KafkaRecords) -> None:
        await process_batch(msg.raw_message, EXECUTIONS, runtime.uow, executions_inbox, runtime.dead_letters,
                            record_executions)

    @runtime.broker.subscriber(ADMIN_COMMANDS.name, **admin_subscriber_options(settings))
    async def on_admin_command(msg: KafkaRecords) -> None:
        command = ADMIN_COMMANDS.decode(msg.body)
        # Authenticate, read, ask the venue: no transaction held meanwhile.
        prepared = await admin.prepare(command)
        # One short transaction: the claim, what the venue said, the run, the reply and ledger commands (outbox).
        async with runtime.uow.begin() as conn:
            if not await admin_inbox.claim(conn, command.message_id):
                return
            replies = await admin.commit(conn, command, prepared)
        log.info("admin_command_answered", request_id=str(command.request_id),
                 status=replies[0].status if replies else AWAITING, parts=len(replies))

    @batch_subscriber(runtime.broker, PAPER_REPAIRS.name, GROUP)
    async def on_paper_repairs(msg: KafkaRecords) -> None:
        await process_batch(msg.raw_message, PAPER_REPAIRS, runtime.uow, repairs_inbox, runtime.dead_letters,
                            admin.complete_paper_repairs)

    return resolver
