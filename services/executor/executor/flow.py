"""The executor's wiring. What it consumes and produces: the generated list in the service's README.md."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from tenacity import RetryCallState, wait_random_exponential

from egis_common import contracts as c
from egis_common.batches import consume_batch, process_batch
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.logs import get_logger
from egis_common.metrics import HANDLER_SECONDS
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTOR_COMMANDS, INTENTS, LEDGER_EVENTS, MARK_PRICES
from egis_venues.paper import PaperExchange
from executor.domain import Decision, ResendPolicy
from egis_venues.port import ExchangePort
from executor.adapters.exchanges import build_exchanges
from executor.metrics import RESERVATIONS_RESENT, count, count_resends, count_resolutions
from executor.paper_repairs import repair_paper_positions
from executor.settings import ExecutorSettings
from executor.submission import Submission
from executor.use_cases import Executor

log = get_logger(__name__)
GROUP = "executor"
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
        started = time.perf_counter()
        made = await process_batch(msg.raw_message, INTENTS, runtime.uow, intents_inbox, runtime.dead_letters,
                                   executor.receive_intents)
        report(made)
        HANDLER_SECONDS.labels(GROUP, "intents_batch").observe(time.perf_counter() - started)

    @batch_subscriber(runtime.broker, LEDGER_EVENTS.name, ANSWERS_GROUP, batch)
    async def on_ledger_events(msg: KafkaRecords) -> None:
        started = time.perf_counter()
        report(await consume_batch(msg.raw_message, LEDGER_EVENTS, runtime.dead_letters, executor.handle_answers))
        HANDLER_SECONDS.labels(GROUP, "ledger_events_batch").observe(time.perf_counter() - started)

    async def handle_commands(conn, commands: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        repairs = [m for m in commands if isinstance(m, c.RepairPaperPositions)]
        if repairs:
            await repair_paper_positions(conn, runtime.outbox, repairs)
        settled = [m for m in commands if isinstance(m, c.RecordResolution)]
        return await executor.record_resolutions(conn, settled) if settled else []

    @batch_subscriber(runtime.broker, EXECUTOR_COMMANDS.name, COMMANDS_GROUP, batch)
    async def on_commands(msg: KafkaRecords) -> None:
        started = time.perf_counter()
        made = await process_batch(msg.raw_message, EXECUTOR_COMMANDS, runtime.uow, commands_inbox,
                                   runtime.dead_letters, handle_commands)
        resolutions(made)
        HANDLER_SECONDS.labels(GROUP, "commands_batch").observe(time.perf_counter() - started)

    paper = exchanges.get(c.ExchangeName.PAPER)
    if isinstance(paper, PaperExchange):

        @batch_subscriber(runtime.broker, MARK_PRICES.name, MARKS_GROUP, batch)
        async def on_mark_prices(msg: KafkaRecords) -> None:
            async def apply(prices: list[c.Message]) -> list:
                for price in prices:
                    await paper.set_mark_price(price.symbol, price.price, price.occurred_at)
                return []

            await consume_batch(msg.raw_message, MARK_PRICES, runtime.dead_letters, apply)

    return Wiring(executor, exchanges)


async def sweep(executor: Executor, older_than_seconds: float) -> None:
    """Periodic: intents stuck `submitting` go to reconciliation (see Executor.sweep_stale_submissions)."""
    made = await executor.sweep_stale_submissions(older_than_seconds)
    count(made)
    for decision in made:
        log.warning("stale_submission_to_reconciliation", intent_id=str(decision.intent.intent_id))


async def ask_again(executor: Executor, after_seconds: float, batch: int) -> None:
    """Periodic: intents stuck `preflight_requested` ask again (see Executor.ask_again_for_reservations)."""
    made = await executor.ask_again_for_reservations(after_seconds, batch)
    asked = [str(m.intent_id) for decision in made for m in decision.messages]
    if asked:
        RESERVATIONS_RESENT.inc(len(asked))
        log.warning("reservations_asked_again", count=len(asked), intent_ids=asked[:20])


async def resend_closes(executor: Executor, batch: int) -> None:
    """Periodic: closes the venue did not execute are sent again when due (see Executor.resend_closes)."""
    made = await executor.resend_closes(batch)
    count(made)
    count_resends(made)
    for decision in made:
        intent = decision.intent
        if intent is not None:
            log.warning("close_resent", intent_id=str(intent.intent_id), exchange=intent.exchange.value,
                        attempt=intent.send_attempts, status=intent.status.value, code=intent.exchange_code,
                        detail=intent.detail)


def resolutions(made: Iterable[tuple[c.Message, Decision]]) -> None:
    made = list(made)
    count_resolutions(decision for _, decision in made)
    for message, decision in made:
        fields = {"intent_id": str(message.intent_id), "resolution": message.resolution,
                  "resolved_by": message.resolved_by, "note": decision.note}
        if decision.intent is not None:
            log.info("pending_resolution_recorded", status=decision.intent.status.value, **fields)
        elif decision.resolved is not None:  # recorded, but the intent cannot follow it: a person must look
            log.error("pending_resolution_not_applied", **fields)
        else:
            log.info("pending_resolution_ignored", **fields)


def report(made: Iterable[tuple[c.Message, Decision]]) -> None:
    made = list(made)
    count(decision for _, decision in made)
    for message, decision in made:
        intent = decision.intent
        log.info("executor_handled", message=message.type, intent_id=str(message.intent_id), note=decision.note,
                 status=intent.status.value if intent else None, reason=intent.skip_reason if intent else None,
                 code=intent.exchange_code if intent else None)
