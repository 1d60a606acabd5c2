"""The ledger's wiring: each subscriber hands its batch to `handlers`.

What it consumes and produces: the generated list in the service's README.md.
"""

from __future__ import annotations

from egis_common import contracts as c
from egis_common.broker import KafkaRecords, batch_subscriber
from egis_common.runtime import Runtime
from egis_common.topics import EXECUTIONS, LEDGER_COMMANDS, SIGNAL_JOURNAL
from ledger import handlers
from ledger.handlers import Ledger
from ledger.settings import LedgerSettings

GROUP = "ledger"
# Through the outbox, in the transaction of the state change: the preflight answers and every position and
# budget change (handlers), and a BotSnapshot on every bot change (bots.py, from the HTTP API and the CLI);
# straight to Kafka, not through the outbox: an admin's repair from the web console.
PRODUCES: tuple[type[c.Message], ...] = (
    c.BudgetReserved,
    c.PreflightRejected,
    c.PositionOpened,
    c.PositionClosed,
    c.PositionReduced,
    c.PositionFailed,
    c.CloseRejected,
    c.BudgetChanged,
    c.BotSnapshot,
    c.AdminCommand,  # the console's repairs, signed with the operator's key (adapters/console/repairs.py)
)


def build_ledger(runtime: Runtime) -> Ledger:
    settings: LedgerSettings = runtime.settings  # type: ignore[assignment]
    return Ledger(runtime.outbox, settings.min_order_size_usd, settings.budget_debug)


def register(runtime: Runtime) -> Ledger:
    ledger = build_ledger(runtime)
    commands_inbox = runtime.inbox("ledger.commands")
    executions_inbox = runtime.inbox("ledger.executions")

    @batch_subscriber(runtime.broker, LEDGER_COMMANDS.name, GROUP)
    async def on_ledger_commands(msg: KafkaRecords) -> None:
        await handlers.on_ledger_commands(runtime, ledger, commands_inbox, msg.raw_message)

    @batch_subscriber(runtime.broker, EXECUTIONS.name, GROUP)
    async def on_executions(msg: KafkaRecords) -> None:
        await handlers.on_executions(runtime, ledger, executions_inbox, msg.raw_message)

    journal_inbox = runtime.inbox("ledger.signal_journal")

    @batch_subscriber(runtime.broker, SIGNAL_JOURNAL.name, GROUP)
    async def on_signals_journaled(msg: KafkaRecords) -> None:
        await handlers.on_signals_journaled(runtime, journal_inbox, msg.raw_message)

    return ledger
