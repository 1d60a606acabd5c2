"""Every message the signal_router consumes and produces.

In:  POST /v1/signals              a webhook signal (adapters/http.py -> Gateway)
     egis.ledger.bots.v1           BotSnapshot or tombstone, keyed by bot_id: read whole from
                                   the beginning at every start (no consumer group), then followed
     egis.signals.received.v1      SignalReceived (group `signal_router`), in batches of up to
                                   500: one transaction per batch (inbox, dedup keys, outbox)
Out: egis.signals.received.v1      SignalReceived, published by the gateway itself, acks=all and
                                   awaited before it answers 202: the one exception to the outbox rule
     egis.router.intents.v1        OrderIntent    } through the outbox, in the transaction that
     egis.signals.skipped.v1       SignalSkipped  } claims the inbox and the signal's dedup key
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from faststream.kafka import KafkaBroker

from egis_common.batches import process_batch
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.contracts import OrderIntent, SignalReceived, SignalSkipped, SignalSkipReason, utc_now
from egis_common.failpoints import failpoint
from egis_common.logs import get_logger
from egis_common.metrics import HANDLER_SECONDS
from egis_common.runtime import Runtime
from egis_common.topics import BOTS, SIGNALS_RECEIVED
from signal_router import domain, repository
from signal_router.adapters.bots_feed import BotsFeed
from signal_router.adapters.gateway_producer import BoundedPublish
from signal_router.bots import BotView
from signal_router.gateway import Gateway
from signal_router.metrics import BOTS_KNOWN, SIGNALS_ROUTED, SIGNALS_SKIPPED
from signal_router.settings import RouterSettings

log = get_logger(__name__)
GROUP = "signal_router"


@dataclass(frozen=True)
class Wiring:
    gateway: Gateway
    bots_feed: BotsFeed


def register(runtime: Runtime, view: BotView, gateway_broker: KafkaBroker) -> Wiring:
    settings: RouterSettings = runtime.settings  # type: ignore[assignment]
    signals_out = gateway_broker.publisher(SIGNALS_RECEIVED.name, title="gateway:SignalReceived")
    gateway = Gateway(view, limits_of(settings), BoundedPublish(signals_out, settings))
    if settings.router_enabled:
        route_signals(runtime, view, settings)
    feed = BotsFeed(settings.kafka_bootstrap_servers, BOTS.name, bot_records_into(view), client_id=f"{GROUP}-bots")
    return Wiring(gateway, feed)


def bot_records_into(view: BotView) -> Callable[[bytes | None, bytes | None], None]:
    def on_bot_record(key: bytes | None, value: bytes | None) -> None:
        if value is None:  # a tombstone: the bot is gone
            view.remove(UUID(key.decode()))
        else:
            view.apply(BOTS.decode(value))
        BOTS_KNOWN.set(len(view))

    return on_bot_record


def route_signals(runtime: Runtime, view: BotView, settings: RouterSettings) -> None:
    inbox = runtime.inbox("signal_router.signals")
    max_lag = timedelta(seconds=settings.max_signal_lag_seconds)

    async def route(conn, signals: list[SignalReceived]) -> list[tuple[SignalReceived, OrderIntent | SignalSkipped]]:
        now = utc_now()
        decided = [(signal, domain.route(signal, view.get(signal.bot_id), now, max_lag)) for signal in signals]
        taken = await repository.claim_signals(conn, decided)
        decided = [(signal, decision if free else domain.skip(signal, SignalSkipReason.DUPLICATE_SIGNAL, "seen before"))
                   for (signal, decision), free in zip(decided, taken, strict=True)]
        await runtime.outbox.add(conn, *(decision for _, decision in decided))
        failpoint("signal_router.before_commit")
        return decided

    @batch_subscriber(runtime.broker, SIGNALS_RECEIVED.name, GROUP)
    async def on_signals_received(msg: KafkaRecords) -> None:
        started = time.perf_counter()
        decided = await process_batch(
            msg.raw_message, SIGNALS_RECEIVED, runtime.uow, inbox, runtime.dead_letters, route
        )
        failpoint("signal_router.after_commit")
        HANDLER_SECONDS.labels(GROUP, "signals_received_batch").observe(time.perf_counter() - started)
        for signal, decision in decided:
            report(signal, decision)


def report(signal: SignalReceived, decision: OrderIntent | SignalSkipped) -> None:
    if isinstance(decision, OrderIntent):
        SIGNALS_ROUTED.labels(decision.intent.value).inc()
        log.info("signal_routed", intent=decision.intent.value, symbol=decision.symbol,
                 intent_id=str(decision.intent_id), dedup_key=signal.dedup_key)
    else:
        SIGNALS_SKIPPED.labels(decision.reason.value).inc()
        log.info("signal_skipped", reason=decision.reason.value, detail=decision.detail,
                 signal_key=signal.signal_key, dedup_key=signal.dedup_key)


def limits_of(settings: RouterSettings) -> domain.Limits:
    return domain.Limits(
        symbols=frozenset(settings.symbols),
        min_size_usd=settings.min_order_size_usd,
        max_size_usd=settings.max_order_size_usd,
        max_lag=timedelta(seconds=settings.max_signal_lag_seconds),
        max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
    )
