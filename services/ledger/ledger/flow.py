"""Every message the ledger consumes and produces.

In:  egis.ledger.commands.v1    ReserveBudget, BackfillClosure, ReleaseReservation
     egis.executor.executions.v1 OrderFilled, OrderRejected, OrderPendingReconciliation
Out (through the outbox, same transaction as the state change):
     egis.ledger.events.v1      BudgetReserved | PreflightRejected (the preflight answer),
                                PositionOpened, PositionReduced, PositionClosed,
                                PositionFailed, CloseRejected, BudgetChanged
     egis.ledger.bots.v1        BotSnapshot on every bot change (from the HTTP API)
"""

from __future__ import annotations

import time

from faststream.kafka.annotations import KafkaMessage

from egis_common import contracts as c
from egis_common.broker import subscriber_options
from egis_common.logs import get_logger
from egis_common.metrics import HANDLER_SECONDS
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTIONS, LEDGER_COMMANDS
from ledger.metrics import count_preflight
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

    @runtime.broker.subscriber(LEDGER_COMMANDS.name, **subscriber_options(GROUP))
    async def on_ledger_command(msg: KafkaMessage) -> None:
        command = LEDGER_COMMANDS.decode(msg.body)
        started = time.perf_counter()
        async with runtime.uow.begin() as conn:
            if not await commands_inbox.claim(conn, command.message_id):
                return
            if isinstance(command, c.ReserveBudget):
                outcome = await ledger.reserve(conn, command)
            elif isinstance(command, c.BackfillClosure):
                outcome = await ledger.backfill(conn, command)
            else:
                outcome = await ledger.release(conn, command)
        if isinstance(command, c.ReserveBudget):
            count_preflight(outcome)
        HANDLER_SECONDS.labels("ledger", command.type).observe(time.perf_counter() - started)
        log.info("ledger_command_handled", command=command.type, note=outcome.note,
                 rejection=outcome.rejection.value if outcome.rejection else None)

    @runtime.broker.subscriber(EXECUTIONS.name, **subscriber_options(GROUP))
    async def on_execution(msg: KafkaMessage) -> None:
        execution = EXECUTIONS.decode(msg.body)
        started = time.perf_counter()
        async with runtime.uow.begin() as conn:
            if not await executions_inbox.claim(conn, execution.message_id):
                return
            outcome = await ledger.apply_execution(conn, execution)
        HANDLER_SECONDS.labels("ledger", execution.type).observe(time.perf_counter() - started)
        log.info("execution_applied", execution=execution.type, note=outcome.note)
