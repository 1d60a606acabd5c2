"""The executor's wiring: each subscriber hands its batch to `handlers`.

What it consumes and produces: the generated list in the service's README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import RetryCallState, wait_random_exponential

from egis_common import contracts as c
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTOR_COMMANDS, INTENTS, LEDGER_EVENTS, MARK_PRICES
from egis_venues.paper import PaperExchange
from egis_venues.port import ExchangePort
from executor import handlers
from executor.adapters.exchanges import build_exchanges
from executor.domain import ResendPolicy
from executor.handlers import GROUP, Executor, Submission
from executor.settings import ExecutorSettings

# One consumer group per subscriber: a consumer alone in its group is assigned its partitions at
# once, instead of every subscriber's join rebalancing the others (seconds each at start-up).
INTENTS_GROUP, ANSWERS_GROUP, MARKS_GROUP = f"{GROUP}.intents", f"{GROUP}.ledger-events", f"{GROUP}.mark-prices"
COMMANDS_GROUP = f"{GROUP}.commands"


@dataclass(frozen=True)
class Wiring:
    executor: Executor
    exchanges: dict[c.ExchangeName, ExchangePort]


def build_executor(runtime: Runtime, exchanges: dict[c.ExchangeName, ExchangePort]) -> Executor:
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    answers_inbox = runtime.inbox("executor.ledger_answers")
    submission = Submission(
        runtime.uow, runtime.outbox, answers_inbox, exchanges, settings.exchange_timeout_seconds,
        settings.exchange_concurrency, settings.outcome_retry_seconds, resend_policy(settings),
    )
    return Executor(runtime.uow, runtime.outbox, answers_inbox, exchanges, submission)


def resend_policy(settings: ExecutorSettings) -> ResendPolicy:
    """Full jitter, so that the closes one outage refused are not all sent again at the same moment."""
    wait = wait_random_exponential(multiplier=settings.close_resend_min_seconds, min=settings.close_resend_min_seconds,
                                   max=settings.close_resend_max_seconds)

    def backoff_seconds(attempts: int) -> float:
        state = RetryCallState(None, None, (), {})
        state.attempt_number = max(attempts, 1)
        return wait(state)

    return ResendPolicy(settings.close_resend_for_seconds, backoff_seconds)


def register(runtime: Runtime, exchanges: dict[c.ExchangeName, ExchangePort] | None = None) -> Wiring:
    settings: ExecutorSettings = runtime.settings  # type: ignore[assignment]
    exchanges = build_exchanges(runtime) if exchanges is None else exchanges
    executor = build_executor(runtime, exchanges)
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
            await handlers.on_mark_prices(runtime, paper, msg.raw_message)

    return Wiring(executor, exchanges)
