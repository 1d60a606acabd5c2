"""The executor's wiring: each subscriber hands its batch to `handlers`. Every handler's time goes to
`egis_handler_seconds`: `handlers` records its own, but for the mark prices', which is taken here.

What it consumes and produces: the generated list in the service's README.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, wait_random_exponential

from egis_common import contracts as c
from egis_common.bots_feed import BotsFeed
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.kafka_login import client_options
from egis_common.metrics import HANDLER_SECONDS
from egis_common.runtime import Runtime
from egis_common.topics import BOTS, EXECUTOR_COMMANDS, INTENTS, LEDGER_EVENTS, MARK_PRICES, Topic
from egis_venues.paper import PaperExchange
from egis_venues.port import ExchangePort
from executor import handlers
from executor.adapters.exchanges import build_exchanges
from executor.bots import BotView, KnownBots
from executor.domain import ResendPolicy
from executor.handlers import GROUP, Executor, Submission
from executor.settings import ExecutorSettings

# One consumer group per subscriber: a consumer alone in its group is assigned its partitions at
# once, instead of every subscriber's join rebalancing the others (seconds each at start-up).
INTENTS_GROUP, ANSWERS_GROUP, MARKS_GROUP = f"{GROUP}.intents", f"{GROUP}.ledger-events", f"{GROUP}.mark-prices"
COMMANDS_GROUP = f"{GROUP}.commands"
# Topics read whole from the beginning at every start, then followed, without a consumer group
# (egis_common.bots_feed), each with the handler of its records: where each bot's orders go.
FEEDS: tuple[tuple[Topic, Callable[..., None]], ...] = ((BOTS, handlers.on_bot_record),)


@dataclass(frozen=True)
class Wiring:
    executor: Executor
    exchanges: dict[c.ExchangeName, ExchangePort]
    bots: KnownBots


def known_bots(runtime: Runtime) -> KnownBots:
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    view = BotView()
    ((bots, on_bot_record),) = FEEDS
    feed = BotsFeed(
        settings.kafka_bootstrap_servers,
        bots.name,
        functools.partial(on_bot_record, view),
        client_id=f"{GROUP}-bots",
        kafka_options=client_options(settings),
    )
    return KnownBots(
        runtime,
        view,
        feed,
        ready_timeout_seconds=settings.bots_ready_timeout_seconds,
        catch_up_seconds=settings.bots_catch_up_seconds,
    )


def build_executor(runtime: Runtime, exchanges: dict[c.ExchangeName, ExchangePort], bots: KnownBots) -> Executor:
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    answers_inbox = runtime.inbox("executor.ledger_answers")
    submission = Submission(
        runtime.uow,
        runtime.outbox,
        answers_inbox,
        exchanges,
        settings.exchange_timeout_seconds,
        settings.exchange_concurrency,
        settings.outcome_retry_seconds,
        resend_policy(settings),
    )
    return Executor(runtime.uow, runtime.outbox, answers_inbox, exchanges, submission, bots)


def resend_policy(settings: ExecutorSettings) -> ResendPolicy:
    """Full jitter, so that the closes one outage refused are not all sent again at the same moment."""
    wait = wait_random_exponential(
        multiplier=settings.close_resend_min_seconds,
        min=settings.close_resend_min_seconds,
        max=settings.close_resend_max_seconds,
    )

    def backoff_seconds(attempts: int) -> float:
        state = RetryCallState(None, None, (), {})
        state.attempt_number = max(attempts, 1)
        return wait(state)

    return ResendPolicy(settings.close_resend_for_seconds, backoff_seconds)


def register(runtime: Runtime, exchanges: dict[c.ExchangeName, ExchangePort] | None = None) -> Wiring:
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    exchanges = build_exchanges(runtime) if exchanges is None else exchanges
    bots = known_bots(runtime)
    executor = build_executor(runtime, exchanges, bots)
    intents_inbox = runtime.inbox("executor.intents")
    commands_inbox = runtime.inbox("executor.commands")
    batch = settings.batch_max_records

    @batch_subscriber(runtime.broker, INTENTS.name, INTENTS_GROUP, batch)
    async def on_intents(msg: KafkaRecords) -> None:
        await handlers.on_intents(runtime, executor, intents_inbox, msg.raw_message)

    @batch_subscriber(runtime.broker, LEDGER_EVENTS.name, ANSWERS_GROUP, batch)
    async def on_ledger_events(msg: KafkaRecords) -> None:
        await handlers.on_ledger_events(runtime, executor, msg.raw_message)

    @batch_subscriber(runtime.broker, EXECUTOR_COMMANDS.name, COMMANDS_GROUP, batch)
    async def on_commands(msg: KafkaRecords) -> None:
        await handlers.on_commands(runtime, executor, commands_inbox, msg.raw_message)

    paper = exchanges.get(c.ExchangeName.PAPER)
    if isinstance(paper, PaperExchange):  # mark prices move only the paper venue

        @batch_subscriber(runtime.broker, MARK_PRICES.name, MARKS_GROUP, batch)
        async def on_mark_prices(msg: KafkaRecords) -> None:
            with HANDLER_SECONDS.labels(GROUP, "mark_prices_batch").time():
                await handlers.on_mark_prices(runtime, paper, msg.raw_message)

    return Wiring(executor, exchanges, bots)
