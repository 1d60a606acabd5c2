"""Every message the ledger consumes and produces.

In:  egis.ledger.commands.v1    ReserveBudget, BackfillClosure, ReleaseReservation
     egis.executor.executions.v1 OrderFilled, OrderRejected, OrderPendingReconciliation,
                                 ProtectiveOrdersPlaced (tp_order_id, sl_order_id on the position)
Out (through the outbox, same transaction as the state change):
     egis.ledger.events.v1      BudgetReserved | PreflightRejected (the preflight answer),
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
from ledger.metrics import count_preflight, show_budgets
from ledger.settings import LedgerSettings
from ledger.use_cases import Ledger

log = get_logger(__name__)
GROUP = "ledger"


def build_ledger(runtime: Runtime) -> Ledger:
    settings: LedgerSettings = runtime.settings  # type: ignore[assignment]
    return Ledger(runtime.outbox, settings.min_order_size_usd, settings.budget_debug)


def register(runtime: Runtime) -> None:
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
        for command, outcome in outcomes:
            if isinstance(command, c.ReserveBudget):
                count_preflight(outcome)
            log.info("ledger_command_handled", command=command.type, bot_id=str(command.bot_id), note=outcome.note,
                     rejection=outcome.rejection.value if outcome.rejection else None)
        show_budgets(outcome for _, outcome in outcomes)
        HANDLER_SECONDS.labels("ledger", "ledger_commands_batch").observe(time.perf_counter() - started)

    @batch_subscriber(runtime.broker, EXECUTIONS.name, GROUP)
    async def on_executions(msg: KafkaRecords) -> None:
        started = time.perf_counter()
        outcomes = await process_batch(
            msg.raw_message, EXECUTIONS, runtime.uow, executions_inbox, runtime.dead_letters, ledger.handle_executions
        )
        failpoint("ledger.after_execution_commit")
        for execution, outcome in outcomes:
            log.info("execution_applied", execution=execution.type, bot_id=str(execution.bot_id), note=outcome.note)
        show_budgets(outcome for _, outcome in outcomes)
        HANDLER_SECONDS.labels("ledger", "executions_batch").observe(time.perf_counter() - started)
