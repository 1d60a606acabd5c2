"""The executor's use cases: one per message it handles and per periodic job, each top to bottom.

Entry points (what `flow.py` and `main.py` call):
    on_intents          OrderIntent: a new intent asks the ledger for a reservation (ReserveBudget), unless its
                        bot, as the bots topic states it, does not back it (refused: unknown_bot, bot_deleted,
                        account_mismatch); the exchange and the account are the bot's
    on_bot_record       a record of the bots topic (a BotSnapshot or a tombstone): the view of bots follows it
    on_ledger_events    BudgetReserved: the order goes to the exchange and back (`Submission`);
                        PreflightRejected: the intent is skipped; every other ledger event is ignored
    on_commands         the reconciler's RecordResolution (a pending order settled) and RepairPaperPositions
                        (the paper venue's positions written: a use case of its own, `paper_repairs`)
    on_mark_prices      MarkPrice: the paper venue's marks, from which its stops trigger
    sweep               periodic: intents stuck `submitting` go to reconciliation
    ask_again           periodic: intents stuck `preflight_requested` ask the ledger again
    resend_closes       periodic: closes the venue did not execute are sent again when due

Decisions are `domain`'s, rows and the outbox `adapters.repository`'s, the venues `egis_venues`'.
Intents and commands are handled inside the caller's transaction (after the inbox claim). The ledger's
answers are not: a reservation leads to an exchange call, which never happens inside a database
transaction (`Submission`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common import contracts as c
from egis_common.batches import consume_batch, process_batch
from egis_common.contracts import utc_now
from egis_common.failpoints import failpoint
from egis_common.failures import transient_retrying
from egis_common.logs import get_logger, ids_of
from egis_common.metrics import HANDLER_SECONDS
from egis_common.outbox import Inbox, Outbox, UnitOfWork
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTOR_COMMANDS, INTENTS, LEDGER_EVENTS, MARK_PRICES
from egis_venues.paper import PaperExchange
from egis_venues.port import ExchangePort, OrderOutcome, Rejected, StopOrder, StopPlaced, SymbolRules, Unknown
from executor import domain
from executor.adapters import repository as repo
from executor.bots import BotView, KnownBots
from executor.domain import STALE_SUBMISSION, Attempt, Decision, Intent, Quote, ResendPolicy
from executor.domain import IntentStatus as S
from executor.metrics import (
    BOTS_KNOWN,
    EXCHANGE_SECONDS,
    RESERVATIONS_RESENT,
    count,
    count_refusals,
    count_resends,
    count_resolutions,
)
from executor.paper_repairs import repair_paper_positions

log = get_logger(__name__)
GROUP = "executor"
ANSWERS = (c.BudgetReserved, c.PreflightRejected)
T = TypeVar("T")
Hook = Callable[[AsyncConnection, list[Decision]], Awaitable[None]]
Made = tuple[c.Message | None, Decision]  # the ledger's answer that led to it; None for a close sent again


# --- entry points ------------------------------------------------------------------------------------------


async def on_intents(runtime: Runtime, executor: Executor, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of intents in one transaction, then a log line and the metrics for each."""
    started = time.perf_counter()
    made = await process_batch(records, INTENTS, runtime.uow, inbox, runtime.dead_letters, executor.receive_intents)
    report(made)
    refused(made)
    HANDLER_SECONDS.labels(GROUP, "intents_batch").observe(time.perf_counter() - started)


def on_bot_record(view: BotView, bot_id: UUID, snapshot: c.BotSnapshot | None) -> None:
    """A bot's latest snapshot replaces the one in the view; a tombstone removes the bot."""
    view.apply(bot_id, snapshot)
    BOTS_KNOWN.set(len(view))


async def on_ledger_events(runtime: Runtime, executor: Executor, records: Sequence[Any]) -> None:
    """The ledger's answers: each claimed in the transaction that records what came of it (no inbox claim here)."""
    started = time.perf_counter()
    report(await consume_batch(records, LEDGER_EVENTS, runtime.dead_letters, executor.handle_answers))
    HANDLER_SECONDS.labels(GROUP, "ledger_events_batch").observe(time.perf_counter() - started)


async def on_commands(runtime: Runtime, executor: Executor, inbox: Inbox, records: Sequence[Any]) -> None:
    """A batch of the reconciler's commands in one transaction, then a log line for each resolution."""
    started = time.perf_counter()
    resolutions(
        await process_batch(
            records, EXECUTOR_COMMANDS, runtime.uow, inbox, runtime.dead_letters, executor.handle_commands
        )
    )
    HANDLER_SECONDS.labels(GROUP, "commands_batch").observe(time.perf_counter() - started)


async def on_mark_prices(runtime: Runtime, paper: PaperExchange, records: Sequence[Any]) -> None:
    """The paper venue's mark prices: its take-profits and stop-losses trigger from them."""

    async def apply(prices: list[c.Message]) -> list:
        for price in prices:
            await paper.set_mark_price(price.symbol, price.price, price.occurred_at)
        return []

    await consume_batch(records, MARK_PRICES, runtime.dead_letters, apply)


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
    """Periodic: closes the venue did not execute are sent again when due (see Submission.resend_due)."""
    made = await executor.resend_closes(batch)
    count(made)
    count_resends(made)
    for decision in made:
        intent = decision.intent
        if intent is not None:
            log.warning(
                "close_resent",
                intent_id=str(intent.intent_id),
                exchange=intent.exchange.value,
                attempt=intent.send_attempts,
                status=intent.status.value,
                code=intent.exchange_code,
                detail=intent.detail,
            )


def report(made: Iterable[tuple[c.Message, Decision]]) -> None:
    made = list(made)
    count(decision for _, decision in made)
    for message, decision in made:
        intent = decision.intent
        log.info(
            "executor_handled",
            message=message.type,
            note=decision.note,
            status=intent.status.value if intent else None,
            reason=intent.skip_reason if intent else None,
            code=intent.exchange_code if intent else None,
            **{"client_order_id": intent.client_order_id if intent else None, **ids_of(message)},
        )


def refused(made: Iterable[tuple[c.Message, Decision]]) -> None:
    """Intents their bot does not back: a router that writes them is broken or compromised, so each is a warning."""
    made = [(message, decision) for message, decision in made if domain.is_refusal(decision)]
    count_refusals(decision for _, decision in made)
    for message, decision in made:
        log.warning(
            "intent_refused",
            reason=decision.intent.skip_reason,
            detail=decision.intent.detail,
            exchange=message.exchange.value,
            exchange_account=message.exchange_account,
            **ids_of(message),
        )


def resolutions(made: Iterable[tuple[c.Message, Decision]]) -> None:
    made = list(made)
    count_resolutions(decision for _, decision in made)
    for message, decision in made:
        fields = {
            "intent_id": str(message.intent_id),
            "resolution": message.resolution,
            "resolved_by": message.resolved_by,
            "note": decision.note,
        }
        if decision.intent is not None:
            log.info("pending_resolution_recorded", status=decision.intent.status.value, **fields)
        elif decision.resolved is not None:  # recorded, but the intent cannot follow it: a person must look
            log.error("pending_resolution_not_applied", **fields)
        else:
            log.info("pending_resolution_ignored", **fields)


# --- intents, the ledger's answers, the reconciler's commands, the periodic jobs ---------------------------


@dataclass
class Executor:
    uow: UnitOfWork
    outbox: Outbox
    answers_inbox: Inbox
    exchanges: Mapping[c.ExchangeName, ExchangePort]
    submission: Submission
    bots: KnownBots

    async def receive_intents(
        self, conn: AsyncConnection, messages: list[c.Message]
    ) -> list[tuple[c.Message, Decision]]:
        """New intents ask the ledger for a reservation; an intent seen before changes nothing.

        Before an intent is refused, the view of bots is read up to the topic's current end: the router
        routes only to a bot it has seen there, so a bot created, edited or restored a moment ago is known then.
        """
        first: dict = {}
        for message in messages:
            first.setdefault(message.intent_id, message)
        made = await self._decide(list(first.values()))
        if any(domain.is_refusal(decision) for _, decision in made):
            await self.bots.caught_up()
            made = await self._decide(list(first.values()))
        inserted = await repo.insert_new(conn, [d.intent for _, d in made])
        made = [(m, d if m.intent_id in inserted else Decision(note="intent seen before")) for m, d in made]
        await self.outbox.add(conn, *(msg for _, d in made for msg in d.messages))
        return made

    async def _decide(self, messages: list[c.OrderIntent]) -> list[tuple[c.Message, Decision]]:
        bots = await self.bots.of({m.bot_id for m in messages})
        return [(m, domain.receive(m, frozenset(self.exchanges), bots[m.bot_id])) for m in messages]

    async def handle_answers(self, messages: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        """The ledger's answers to our reservation commands; every other ledger event is ignored."""
        answers = [m for m in messages if isinstance(m, ANSWERS)]
        if not answers:
            return []
        async with self.uow.read() as conn:  # unlocked: tx1 and tx2 read them again, locked
            known = await repo.load(conn, [a.intent_id for a in answers])
        to_submit: dict = {}
        for answer in answers:
            intent = known.get(answer.intent_id)
            if (
                isinstance(answer, c.BudgetReserved)
                and intent is not None
                and intent.status is S.PREFLIGHT_REQUESTED
                and answer.intent_id not in to_submit
            ):
                to_submit[answer.intent_id] = (intent, answer)
        # A copy of a chosen answer is left to the submission's own claim: were it claimed here, a crash
        # before the outcome is recorded would leave nothing unclaimed to find the intent `submitting`.
        chosen = {answer.message_id for _, answer in to_submit.values()}
        others = [a for a in answers if a.message_id not in chosen and a.intent_id in known]
        return [*await self._bookkeeping(others), *await self.submission.submit(list(to_submit.values()))]

    async def handle_commands(
        self, conn: AsyncConnection, commands: list[c.Message]
    ) -> list[tuple[c.Message, Decision]]:
        """The reconciler's commands, in the caller's transaction: paper repairs answered, resolutions recorded."""
        repairs = [m for m in commands if isinstance(m, c.RepairPaperPositions)]
        if repairs:
            await repair_paper_positions(conn, self.outbox, repairs)
        settled = [m for m in commands if isinstance(m, c.RecordResolution)]
        return await self.record_resolutions(conn, settled) if settled else []

    async def record_resolutions(
        self, conn: AsyncConnection, messages: list[c.Message]
    ) -> list[tuple[c.Message, Decision]]:
        """The reconciler settled pending orders: each resolution recorded once, the first standing."""
        ids = [m.intent_id for m in messages]
        current = await repo.load(conn, ids, lock=True)
        unresolved = await repo.unresolved_pending_of(conn, ids)
        made, now = [], utc_now()
        for message in messages:
            decision = domain.resolved(
                current.get(message.intent_id), message.intent_id in unresolved, message, now, self.submission.resend
            )
            if decision.resolved is not None:
                unresolved.discard(message.intent_id)
            if decision.intent is not None:
                current[message.intent_id] = decision.intent
            made.append((message, decision))
        await repo.persist(conn, self.outbox, [d for _, d in made])
        return made

    async def sweep_stale_submissions(self, older_than_seconds: float) -> list[Decision]:
        """Intents left `submitting` with no answer coming again (its message dead-lettered): to reconciliation."""
        async with self.uow.begin() as conn:
            stale = await repo.stale_submissions(conn, older_than_seconds)
            made = [domain.pending(intent, STALE_SUBMISSION, None) for intent in stale]
            await repo.persist(conn, self.outbox, made)
        return made

    async def resend_closes(self, limit: int) -> list[Decision]:
        """Closes the venue did not execute, whose time to be sent again has come (see Submission.resend_due)."""
        return await self.submission.resend_due(limit)

    async def ask_again_for_reservations(self, older_than_seconds: float, limit: int) -> list[Decision]:
        """Intents still waiting for the ledger's answer long after asking: the same reservation again."""
        async with self.uow.begin() as conn:
            due = await repo.reservations_due_again(conn, older_than_seconds, limit)
            made = [domain.ask_again(intent) for intent in due]
            await repo.persist(conn, self.outbox, made)
        return made

    async def _bookkeeping(self, answers: list[c.Message]) -> list[tuple[c.Message, Decision]]:
        """Answers that lead to no exchange call: a refusal, a repeat, or an interrupted submission."""
        if not answers:
            return []
        made = []
        async with self.uow.begin() as conn:
            claimed = await self.answers_inbox.claim_many(conn, [a.message_id for a in answers])
            current = await repo.load(conn, [a.intent_id for a in answers], lock=True)
            for answer in (a for a in answers if a.message_id in claimed):
                decision = domain.answered(current[answer.intent_id], answer)
                if decision.intent is not None:
                    current[answer.intent_id] = decision.intent
                made.append((answer, decision))
            await repo.persist(conn, self.outbox, [d for _, d in made])
        return made


# --- BudgetReserved: from a reservation to the exchange and back --------------------------------------------


@dataclass
class Submission:
    """From a reservation to the exchange and back, never inside a database transaction.

        plan      market data from the venue (outside any transaction): the order, or why none can be sent
        tx1       the attempt, durably: `submitting` with its client order id and quantity; commit
        call      the exchange (concurrently for a batch, at most `concurrency` calls at once unless the
                  port batches calls itself), bounded by a timeout: Filled | Rejected | Unknown
        tx2       the outcome, the execution message, the inbox claim; commit. Tried again while it fails
                  for a transient reason (the database unavailable), for at most `outcome_retry_seconds`:
                  the exchange has answered, and only a recorded answer spares the order a reconciliation
        rescue    tx2 failed: `pending_reconciliation` holding what the exchange returned, in a fresh
                  transaction; if even that fails, raise: the answer is redelivered and, finding the
                  intent `submitting`, marks it pending without calling the exchange again
        stops     take-profit and stop-loss of a filled open

    A close the venue did not execute waits `resend_due` and is sent again by `resend_due` (a periodic job):
    tx1 picks the due ones and records them `submitting`, then the same call and tx2. Such an attempt comes
    from no ledger answer, so it claims nothing in the inbox; a crash between its tx1 and tx2 leaves it
    `submitting`, which the stale-submission sweep hands to reconciliation.
    """

    uow: UnitOfWork
    outbox: Outbox
    inbox: Inbox
    exchanges: Mapping[c.ExchangeName, ExchangePort]
    timeout_seconds: float
    concurrency: int
    outcome_retry_seconds: float
    resend: ResendPolicy
    # TEST ONLY: awaited inside tx2 just before it commits; raising there injects a failed commit.
    before_outcome_commit: Hook | None = None
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def submit(self, batch: list[tuple[Intent, c.BudgetReserved]]) -> list[Made]:
        if not batch:
            return []
        attempts = await self._plan(batch)
        started, refused = await self._record_attempts(attempts)
        failpoint("executor.after_attempt_commit")
        outcomes = await asyncio.gather(*(self._call(attempt) for attempt in started))
        if started:
            failpoint("executor.after_exchange_call")
        settled = await self._settle(list(zip(started, outcomes, strict=True)))
        failpoint("executor.after_outcome_commit")
        rules = {a.intent.intent_id: a.rules for a in started}
        await self._place_stops([(d.intent, rules[d.intent.intent_id]) for _, d in settled if d.intent is not None])
        return [*refused, *settled]

    async def resend_due(self, limit: int) -> list[Decision]:
        """Closes due to be sent again (at most `limit`): tx1 picks and records them, then call and tx2."""
        async with self.uow.begin() as conn:
            due = await repo.resends_due(conn, limit)
            made = [domain.resending(intent, self._not_after()) for intent in due]
            await repo.persist(conn, self.outbox, made)
        started = [Attempt(d.intent, None, domain.resent_order(d.intent)) for d in made if d.intent is not None]
        outcomes = await asyncio.gather(*(self._call(attempt) for attempt in started))
        return [decision for _, decision in await self._settle(list(zip(started, outcomes, strict=True)))]

    async def _plan(self, batch: list[tuple[Intent, c.BudgetReserved]]) -> list[Attempt]:
        """Market data is fetched once per exchange and symbol of the batch."""
        quotes: dict[tuple[c.ExchangeName, str], asyncio.Future] = {}
        return list(await asyncio.gather(*(self._attempt(intent, answer, quotes) for intent, answer in batch)))

    async def _attempt(self, intent: Intent, answer: c.BudgetReserved, quotes: dict) -> Attempt:
        if intent.exchange not in self.exchanges:
            return Attempt(intent, answer, Rejected("exchange_unavailable", f"no {intent.exchange.value} adapter"))
        if intent.kind is c.IntentKind.CLOSE:  # the quantity is the ledger's: no market data needed
            return domain.plan(intent, answer, None)
        key = (intent.exchange, intent.symbol)
        if key not in quotes:
            quotes[key] = asyncio.ensure_future(self._quote(intent))
        return domain.plan(intent, answer, await quotes[key])

    async def _quote(self, intent: Intent) -> Quote:
        port, exchange, timeout = self.exchanges[intent.exchange], intent.exchange, self.timeout_seconds
        try:
            rules = await timed(port.symbol_rules(intent.symbol), exchange, "symbol_rules", timeout)
        except LookupError as error:
            return Rejected("unknown_symbol", f"{intent.symbol}: {error!r}"[:500])
        except Exception as error:
            return Rejected("market_data_unavailable", f"{intent.symbol}: {error!r}"[:500])
        try:
            return rules, await timed(port.mark_price(intent.symbol), exchange, "mark_price", timeout)
        except Exception as error:
            return Rejected("no_mark_price", f"{intent.symbol}: {error!r}"[:500])

    async def _record_attempts(self, attempts: list[Attempt]) -> tuple[list[Attempt], list[Made]]:
        """tx1: every order about to be sent is `submitting`; every order that cannot be sent is rejected."""
        started, refused, made = [], [], []
        async with self.uow.begin() as conn:
            current = await repo.load(conn, [a.intent.intent_id for a in attempts], lock=True)
            not_sent = [a for a in attempts if isinstance(a.order, Rejected)]
            claimed = await self.inbox.claim_many(conn, [a.answer.message_id for a in not_sent])
            for attempt in attempts:
                intent = current[attempt.intent.intent_id]
                if isinstance(attempt.order, Rejected):
                    if attempt.answer.message_id in claimed:
                        refused.append((attempt.answer, domain.not_placed(intent, attempt.answer, attempt.order)))
                    continue
                now = utc_now()
                decision = domain.submitting(intent, attempt.answer, attempt.order, now, self._not_after(now))
                if decision.intent is not None:  # still ours to submit: nobody got there first
                    started.append(
                        replace(attempt, intent=decision.intent, order=domain.stamped(attempt.order, decision.intent))
                    )
                    made.append(decision)
            await repo.persist(conn, self.outbox, [*made, *(d for _, d in refused)])
            failpoint("executor.before_attempt_commit")
        return started, refused

    def _not_after(self, now: datetime | None = None) -> datetime:
        """The time of an attempt recorded now plus the call's timeout. The call starts once the attempt is
        committed and is bounded by the same timeout, so the executor stops waiting moments after it; the order
        carries it to the venue, and a pending record of the attempt to the reconciler."""
        return (now or utc_now()) + timedelta(seconds=self.timeout_seconds)

    async def _call(self, attempt: Attempt) -> OrderOutcome:
        port = self.exchanges[attempt.intent.exchange]
        async with contextlib.nullcontext() if getattr(port, "batches_concurrent_calls", False) else self._slots:
            try:
                failpoint("executor.before_exchange_call")
                return await timed(
                    port.place_market_order(attempt.order),
                    attempt.intent.exchange,
                    "place_market_order",
                    self.timeout_seconds,
                )
            except TimeoutError:
                return Unknown("timeout", {"timeout_seconds": self.timeout_seconds})
            except Exception as error:  # an adapter must not raise; if one does, the outcome is unknown
                log.exception("exchange_adapter_raised", intent_id=str(attempt.intent.intent_id))
                return Unknown(f"adapter_error: {type(error).__name__}", {"error": str(error)[:500]})

    async def _settle(self, results: list[tuple[Attempt, OrderOutcome]]) -> list[Made]:
        """tx2 for the whole batch, again while the database is unavailable; if it still fails, one transaction
        per order, and a rescue for any that fails again."""
        if not results:
            return []
        try:
            async for attempt in transient_retrying("record_outcomes", hold_seconds=self.outcome_retry_seconds):
                with attempt:
                    return await self._settle_together(results)
        except Exception as error:
            log.warning("recording_outcomes_failed_retrying_one_by_one", orders=len(results), error=repr(error))
        made: list[Made] = []
        for result in results:
            try:
                made.extend(await self._settle_together([result]))
            except Exception as error:
                log.exception("recording_outcome_failed", intent_id=str(result[0].intent.intent_id))
                made.append(await self._rescue(*result, error))
        return made

    async def _settle_together(self, results: list[tuple[Attempt, OrderOutcome]]) -> list[Made]:
        async with self.uow.begin() as conn:
            await self.inbox.claim_many(conn, _answer_ids([attempt for attempt, _ in results]))
            current = await repo.load(conn, [attempt.intent.intent_id for attempt, _ in results], lock=True)
            now = utc_now()
            made = [
                (a.answer, domain.settle(current[a.intent.intent_id], outcome, now, self.resend))
                for a, outcome in results
            ]
            await repo.persist(conn, self.outbox, [d for _, d in made])
            if self.before_outcome_commit is not None:
                await self.before_outcome_commit(conn, [d for _, d in made])
            failpoint("executor.before_outcome_commit")
        return made

    async def _rescue(self, attempt: Attempt, outcome: OrderOutcome, error: Exception) -> Made:
        """What the exchange returned survives as a pending record; raising here means redelivery."""
        async with self.uow.begin() as conn:
            await self.inbox.claim_many(conn, _answer_ids([attempt]))
            intent = (await repo.load(conn, [attempt.intent.intent_id], lock=True))[attempt.intent.intent_id]
            decision = domain.recording_failed(intent, outcome, repr(error))
            await repo.persist(conn, self.outbox, [decision])
        return attempt.answer, decision

    async def _place_stops(self, filled: list[tuple[Intent, SymbolRules | None]]) -> None:
        """Take-profit and stop-loss of the filled opens: recorded `placing`, placed, then recorded again
        together with a ProtectiveOrdersPlaced naming the ones the venue accepted.

        They go out after the entry's outcome is committed. A crash in between leaves `placing` rows behind:
        visible, never re-sent blindly (a venue keeps client algo ids unique only among open algo orders).
        """
        wanted = [
            (intent, purpose, order)
            for intent, rules in filled
            if rules is not None
            for purpose, order in domain.stop_orders(intent, rules)
        ]
        if not wanted:
            return
        async with self.uow.begin() as conn:
            await repo.insert_stops(
                conn, [domain.stop_row(intent, purpose, order) for intent, purpose, order in wanted]
            )
        results = await asyncio.gather(*(_place_stop(self.exchanges[i.exchange], order) for i, _, order in wanted))
        async with self.uow.begin() as conn:
            for (_, _, order), result in zip(wanted, results, strict=True):
                await repo.stop_placed(conn, order.client_algo_id, **domain.stop_outcome(result))
            placed = [stop for stop, result in zip(wanted, results, strict=True) if isinstance(result, StopPlaced)]
            await self.outbox.add(conn, *domain.protective_orders_placed(placed))


def _answer_ids(attempts: list[Attempt]) -> list:
    """The message ids of the ledger's answers these attempts came from (a close sent again came from none)."""
    return [attempt.answer.message_id for attempt in attempts if attempt.answer is not None]


async def _place_stop(port: ExchangePort, order: StopOrder) -> StopPlaced | Rejected | Unknown:
    try:
        return await port.place_stop(order)
    except Exception as error:  # an adapter must not raise; if one does, the outcome is unknown
        log.exception("stop_adapter_raised", client_algo_id=order.client_algo_id)
        return Unknown(f"adapter_error: {type(error).__name__}", {"error": str(error)[:500]})


async def timed(call: Awaitable[T], exchange: c.ExchangeName, operation: str, timeout_seconds: float) -> T:
    """An exchange call, bounded by a timeout (TimeoutError) and measured."""
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(call, timeout_seconds)
    finally:
        EXCHANGE_SECONDS.labels(exchange.value, operation).observe(time.perf_counter() - started)
