"""The reconciler's wiring: each subscriber hands its message or batch to `handlers` (or, for the operators'
commands and the executor's answers to them, to `admin`), timed on `egis_handler_seconds`; `register` also
builds the pending resolver that `main` runs periodically.

What it consumes and produces: the generated list in the service's README.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from egis_common import contracts as c
from egis_common.broker import KafkaRecords, batch_subscriber, subscriber_options
from egis_common.metrics import HANDLER_SECONDS
from egis_common.runtime import Runtime
from egis_common.topics import ADMIN_COMMANDS, EXCHANGE_FACTS, EXECUTIONS, LEDGER_EVENTS, PAPER_REPAIRS
from egis_venues.binance.exchange import BinanceExchange
from egis_venues.binance.weights import WeightBudget
from egis_venues.paper.lookup import PaperLookup
from reconciler import admin as admin_commands
from reconciler import handlers
from reconciler.adapters.operator_keys import OperatorKeys
from reconciler.adapters.venues import OrderLookup
from reconciler.admin import Admin
from reconciler.domain import NotFoundWindows, retry_wait
from reconciler.handlers import PendingResolver
from reconciler.settings import ReconcilerSettings

GROUP = "reconciler"
# One consumer group per subscriber, as in the executor: a consumer alone in its group is assigned its partitions
# at once. In one shared group, a restarted process's five consumers waited out the dead ones' session, then
# rejoined one after another, each join rebalancing the others.
FACTS_GROUP, EVENTS_GROUP, EXECUTIONS_GROUP = f"{GROUP}.exchange-facts", f"{GROUP}.ledger-events", f"{GROUP}.executions"
ADMIN_GROUP, REPAIRS_GROUP = f"{GROUP}.admin", f"{GROUP}.paper-repairs"


def build_venues(settings: ReconcilerSettings, engine: AsyncEngine) -> dict[str, OrderLookup]:
    """Read-only look-ups by exchange. The paper venue's tables are in this database: read with our engine."""
    venues: dict[str, OrderLookup] = {c.ExchangeName.PAPER.value: PaperLookup(engine)}
    if settings.binance_accounts:
        venues[c.ExchangeName.BINANCE_USDM.value] = BinanceExchange(
            settings.binance_accounts,
            live=settings.binance_live,
            base_url=settings.binance_base_url,
            weights=WeightBudget(settings.binance_weight_budget_per_minute),
        )
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
    return Admin(
        runtime.engine,
        runtime.outbox,
        OperatorKeys(settings.operator_keys, settings.operator_keys_file),
        timedelta(seconds=settings.admin_command_max_age_seconds),
        venues,
        not_found_windows(settings),
        settings.admin_ask_for_s(),
        settings.admin_reply_part_bytes,
        timedelta(seconds=settings.pending_escalate_after_seconds),
    )


def _resolver(runtime: Runtime, venues: dict[str, OrderLookup]) -> PendingResolver:
    settings: ReconcilerSettings = runtime.settings  # type: ignore[assignment]
    return PendingResolver(
        runtime.uow,
        runtime.outbox,
        venues,
        not_found_windows(settings),
        retry_wait(settings.pending_retry_initial_seconds, settings.pending_retry_max_seconds),
        timedelta(seconds=settings.pending_escalate_after_seconds),
        settings.pending_resolve_batch,
        settings.pending_resolve_max_seconds,
        timedelta(seconds=settings.pending_resolve_interval_seconds),
    )


def not_found_windows(settings: ReconcilerSettings) -> NotFoundWindows:
    return NotFoundWindows(
        remote=timedelta(seconds=settings.pending_not_found_window_seconds),
        paper=timedelta(seconds=settings.paper_not_found_window_seconds),
    )


def admin_subscriber_options(settings: ReconcilerSettings) -> dict[str, Any]:
    """A command may run for minutes: the consumer must not be taken for dead meanwhile."""
    return {**subscriber_options(ADMIN_GROUP), "max_poll_interval_ms": settings.admin_max_poll_interval_ms()}


def register(runtime: Runtime, venues: dict[str, OrderLookup] | None = None) -> PendingResolver:
    """The subscribers; returns the pending resolver for the composition root to run periodically."""
    settings: ReconcilerSettings = runtime.settings  # type: ignore[assignment]
    # One set of look-ups for the admin commands and the resolver: one weight budget per venue in this process.
    venues = configured_venues(runtime, venues)
    admin, resolver = _admin(runtime, venues), _resolver(runtime, venues)
    executions_inbox = runtime.inbox("reconciler.executions")
    facts_inbox = runtime.inbox("reconciler.facts")
    events_inbox = runtime.inbox("reconciler.ledger-events")
    admin_inbox = runtime.inbox("reconciler.admin")
    repairs_inbox = runtime.inbox("reconciler.paper-repairs")

    @batch_subscriber(runtime.broker, EXCHANGE_FACTS.name, FACTS_GROUP)
    async def on_exchange_facts(msg: KafkaRecords) -> None:
        with HANDLER_SECONDS.labels(GROUP, "exchange_facts_batch").time():
            await handlers.on_exchange_facts(runtime, facts_inbox, msg.raw_message)

    @batch_subscriber(runtime.broker, LEDGER_EVENTS.name, EVENTS_GROUP)
    async def on_ledger_events(msg: KafkaRecords) -> None:
        with HANDLER_SECONDS.labels(GROUP, "ledger_events_batch").time():
            await handlers.on_ledger_events(runtime, events_inbox, msg.raw_message)

    @batch_subscriber(runtime.broker, EXECUTIONS.name, EXECUTIONS_GROUP)
    async def on_executions(msg: KafkaRecords) -> None:
        with HANDLER_SECONDS.labels(GROUP, "executions_batch").time():
            await handlers.on_executions(runtime, executions_inbox, msg.raw_message)

    @runtime.broker.subscriber(ADMIN_COMMANDS.name, **admin_subscriber_options(settings))
    async def on_admin_command(msg: KafkaRecords) -> None:
        with HANDLER_SECONDS.labels(GROUP, "admin_command").time():
            await admin_commands.on_admin_command(runtime, admin, admin_inbox, msg.body)

    @batch_subscriber(runtime.broker, PAPER_REPAIRS.name, REPAIRS_GROUP)
    async def on_paper_repairs(msg: KafkaRecords) -> None:
        with HANDLER_SECONDS.labels(GROUP, "paper_repairs_batch").time():
            await admin_commands.on_paper_repairs(runtime, admin, repairs_inbox, msg.raw_message)

    return resolver
