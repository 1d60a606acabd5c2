"""The signal_router's wiring: the gateway's producer, the router's subscriber and the bots feed.

What it consumes and produces: the generated list in the service's README.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from faststream.kafka import KafkaBroker

from egis_common import contracts as c
from egis_common.bots_feed import BotsFeed
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.kafka_login import client_options
from egis_common.runtime import Runtime
from egis_common.topics import BOTS, SIGNAL_JOURNAL, SIGNALS_RECEIVED, Topic
from signal_router import domain, handlers
from signal_router.adapters.decided import DecidedLookup
from signal_router.adapters.gateway_producer import BackgroundJournal, BoundedPublish
from signal_router.bots import BotView
from signal_router.gateway import Gateway
from signal_router.handlers import GROUP
from signal_router.settings import RouterSettings

# Topics read whole from the beginning at every start, then followed, without a consumer group
# (egis_common.bots_feed), each with the handler of its records.
FEEDS: tuple[tuple[Topic, Callable[..., None]], ...] = ((BOTS, handlers.on_bot_record),)
# SignalReceived by the gateway itself, acks=all and awaited before it answers 202: the one exception to the
# outbox rule. OrderIntent, SignalSkipped and the decision's SignalJournaled through the outbox, in the
# transaction that claims the inbox and the signal's dedup key. The gateway's refusals and known duplicates
# are journalled by its own producer, not awaited: nothing else depends on them.
PRODUCES: tuple[type[c.Message], ...] = (c.SignalReceived, c.OrderIntent, c.SignalSkipped, c.SignalJournaled)


@dataclass(frozen=True)
class Wiring:
    gateway: Gateway
    bots_feed: BotsFeed
    decided: DecidedLookup


def register(runtime: Runtime, view: BotView, gateway_broker: KafkaBroker) -> Wiring:
    settings: RouterSettings = runtime.settings  # type: ignore[assignment]
    signals_out = gateway_broker.publisher(SIGNALS_RECEIVED.name, title="gateway:SignalReceived")
    journal_out = gateway_broker.publisher(SIGNAL_JOURNAL.name, title="gateway:SignalJournaled")
    decided = DecidedLookup(settings, settings.gateway_dedup_lookup_seconds)
    gateway = Gateway(
        view,
        limits_of(settings),
        BoundedPublish(signals_out, settings),
        decided=decided,
        journal=BackgroundJournal(journal_out, settings),
    )
    if settings.router_enabled:
        route_signals(runtime, view, settings)
    ((bots, on_bot_record),) = FEEDS
    feed = BotsFeed(
        settings.kafka_bootstrap_servers,
        bots.name,
        functools.partial(on_bot_record, view),
        client_id=f"{GROUP}-bots",
        kafka_options=client_options(settings),
    )
    return Wiring(gateway, feed, decided)


def route_signals(runtime: Runtime, view: BotView, settings: RouterSettings) -> None:
    inbox = runtime.inbox("signal_router.signals")
    max_lag = timedelta(seconds=settings.max_signal_lag_seconds)

    @batch_subscriber(runtime.broker, SIGNALS_RECEIVED.name, GROUP)
    async def on_signals_received(msg: KafkaRecords) -> None:
        await handlers.on_signals_received(runtime, view, inbox, max_lag, msg.raw_message)


def limits_of(settings: RouterSettings) -> domain.Limits:
    return domain.Limits(
        symbols=frozenset(settings.symbols),
        min_size_usd=settings.min_order_size_usd,
        max_size_usd=settings.max_order_size_usd,
        max_lag=timedelta(seconds=settings.max_signal_lag_seconds),
        max_skew=timedelta(seconds=settings.max_clock_skew_seconds),
    )
