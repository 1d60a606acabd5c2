"""Every message the ledger consumes and produces.

In:  egis.ledger.commands.v1    ReserveBudget, BackfillClosure, ReleaseReservation
     egis.executor.executions.v1 OrderFilled, OrderRejected, OrderPendingReconciliation,
                                 ProtectiveOrdersPlaced (tp_order_id, sl_order_id on the position)
A reservation behind an order in flight on its bot's symbol waits (ledger.waiting_reservations) and is
answered when that order settles, in arrival order; one that waits past EGIS_MAX_WAIT_SECONDS is refused
(wait_expired, by a periodic job in main.py).
Out (through the outbox, same transaction as the state change):
     egis.ledger.events.v1      BudgetReserved | PreflightRejected (the preflight answer, for a waiting
                                reservation when it is decided),
                                PositionOpened, PositionReduced, PositionClosed,
                                PositionFailed, CloseRejected, BudgetChanged
     egis.ledger.bots.v1        BotSnapshot on every bot change (from the HTTP API)
"""

from __future__ import annotations

import time


from egis_common import contracts as c
from egis_common.batches import process_batch
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.failpoints import failpoint
from egis_common.logs import get_logger
from egis_common.metrics import HANDLER_SECONDS
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTIONS, LEDGER_COMMANDS
from ledger import repository as repo
from ledger.domain import Outcome
from ledger.metrics import count_preflight, show_budgets, show_waiting
from ledger.settings import LedgerSettings
from ledger.use_cases import Ledger

log = get_logger(__name__)
GROUP = "ledger"


def build_ledger(runtime: Runtime) -> Ledger:
    settings: LedgerSettings = runtime.settings  # type: ignore[assignment]
    return Ledger(runtime.outbox, settings.min_order_size_usd, settings.budget_debug)


def register(runtime: Runtime) -> Ledger:
    ledger = build_ledger(runtime)
    commands_inbox = runtime.inbox("ledger.commands")
    executions_inbox = runtime.inbox("ledger.executions")

    @batch_subscriber(runtime.broker, LEDGER_COMMANDS.name, GROUP)
    async def on_ledger_commands(msg: KafkaRecords) -> None:
        started = time.perf_counter()
        outcomes = await process_batch(
            msg.raw_message, LEDGER_COMMANDS, runtime.uow, commands_inbox, runtime.dead_letters, ledger.handle_commands
        )
        failpoint("ledger.after_reservation_commit")
        report(outcomes)
        HANDLER_SECONDS.labels("ledger", "ledger_commands_batch").observe(time.perf_counter() - started)

    @batch_subscriber(runtime.broker, EXECUTIONS.name, GROUP)
    async def on_executions(msg: KafkaRecords) -> None:
        started = time.perf_counter()
        outcomes = await process_batch(
            msg.raw_message, EXECUTIONS, runtime.uow, executions_inbox, runtime.dead_letters, ledger.handle_executions
        )
        failpoint("ledger.after_execution_commit")
        report(outcomes)
        HANDLER_SECONDS.labels("ledger", "executions_batch").observe(time.perf_counter() - started)

    return ledger


async def expire_waiting(runtime: Runtime, ledger: Ledger, older_than_seconds: float) -> None:
    """Periodic: reservations that waited too long behind an order in flight are refused (`wait_expired`)."""
    async with runtime.uow.begin() as conn:
        expired = await ledger.expire_waiting(conn, older_than_seconds)
    report(expired)
    async with runtime.uow.read() as conn:
        show_waiting(*await repo.waiting_gauge(conn))


def report(handled: list[tuple[c.Message, Outcome]]) -> None:
    """A log line per message handled (a command, an execution, or a reservation that waited), and the metrics."""
    for message, outcome in handled:
        if isinstance(message, c.ReserveBudget) and not outcome.waiting:
            count_preflight(outcome)
        event = "execution_applied" if type(message) in EXECUTIONS.messages else "ledger_command_handled"
        log.info(event, message=message.type, bot_id=str(message.bot_id),
                 intent_id=str(intent_id) if (intent_id := getattr(message, "intent_id", None)) else None,
                 note=outcome.note, waiting=outcome.waiting,
                 rejection=outcome.rejection.value if outcome.rejection else None)
    show_budgets(outcome for _, outcome in handled)
