"""The topic registry: every Egis topic, its key, partition count and messages."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from egis_common import contracts as c


@dataclass(frozen=True)
class Topic:
    name: str
    key: str  # which field keys the records, so one bot's messages stay in order
    partitions: int
    messages: tuple[type[c.Message], ...]
    compacted: bool = False

    @cached_property
    def adapter(self) -> TypeAdapter[c.Message]:
        if len(self.messages) == 1:
            return TypeAdapter(self.messages[0])
        union: Any = Union[self.messages]  # noqa: UP007 - a union of classes built at run time, untyped to mypy
        return TypeAdapter(Annotated[union, Field(discriminator="type")])

    def decode(self, payload: bytes | str) -> c.Message:
        """Parse a record's value; raises `pydantic.ValidationError` on anything off-contract."""
        return self.adapter.validate_json(payload)

    def accepts(self, message: c.Message) -> bool:
        return isinstance(message, self.messages)


def encode(message: c.Message) -> bytes:
    return message.model_dump_json().encode()


SIGNALS_RECEIVED = Topic("egis.signals.received.v1", "signal_key", 6, (c.SignalReceived,))
SIGNALS_SKIPPED = Topic("egis.signals.skipped.v1", "signal_key", 3, (c.SignalSkipped,))
INTENTS = Topic("egis.router.intents.v1", "bot_id", 6, (c.OrderIntent,))
# What became of each webhook post: the router's decisions, the gateway's refusals and known duplicates.
SIGNAL_JOURNAL = Topic("egis.router.signal-journal.v1", "bot_id", 3, (c.SignalJournaled,))
LEDGER_COMMANDS = Topic(
    "egis.ledger.commands.v1",
    "bot_id",
    6,
    (c.ReserveBudget, c.BackfillClosure, c.ReleaseReservation, c.ApplyFoundFill),
)
LEDGER_EVENTS = Topic(
    "egis.ledger.events.v1",
    "bot_id",
    6,
    (
        c.BudgetReserved,
        c.PreflightRejected,
        c.PositionOpened,
        c.PositionClosed,
        c.PositionReduced,
        c.PositionFailed,
        c.CloseRejected,
        c.BudgetChanged,
    ),
)
BOTS = Topic("egis.ledger.bots.v1", "bot_id", 3, (c.BotSnapshot,), compacted=True)
EXECUTIONS = Topic(
    "egis.executor.executions.v1",
    "bot_id",
    6,
    (c.OrderFilled, c.OrderRejected, c.OrderPendingReconciliation, c.ProtectiveOrdersPlaced),
)
EXECUTOR_COMMANDS = Topic("egis.executor.commands.v1", "bot_id", 3, (c.RecordResolution, c.RepairPaperPositions))
# The executor's answers to the reconciler's paper repairs, by the admin request they belong to.
PAPER_REPAIRS = Topic("egis.executor.paper-repairs.v1", "request_id", 1, (c.PaperPositionsRepaired,))
EXCHANGE_FACTS = Topic(
    "egis.exchange.facts.v1",
    "exchange_account",
    6,
    (c.ExchangeOrderFact, c.ExchangeAlgoOrderFact, c.ExchangeTradeFact),
)
MARK_PRICES = Topic("egis.exchange.mark-prices.v1", "symbol", 3, (c.MarkPrice,))
ADMIN_COMMANDS = Topic("egis.reconciler.admin.v1", "request_id", 1, (c.AdminCommand,))
ADMIN_REPLIES = Topic("egis.reconciler.admin-replies.v1", "request_id", 1, (c.AdminReply,))

# Poison messages land here with their origin in headers; the value is kept as received.
DEAD_LETTER_TOPIC = "egis.deadletter.v1"
DEAD_LETTER_PARTITIONS = 1

ALL_TOPICS: tuple[Topic, ...] = (
    SIGNALS_RECEIVED,
    SIGNALS_SKIPPED,
    INTENTS,
    SIGNAL_JOURNAL,
    LEDGER_COMMANDS,
    LEDGER_EVENTS,
    BOTS,
    EXECUTIONS,
    EXECUTOR_COMMANDS,
    PAPER_REPAIRS,
    EXCHANGE_FACTS,
    MARK_PRICES,
    ADMIN_COMMANDS,
    ADMIN_REPLIES,
)


def topic_named(name: str) -> Topic:
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}")


_TOPIC_OF_CLASS: dict[type, Topic] = {cls: topic for topic in ALL_TOPICS for cls in topic.messages}


def topic_for(message: c.Message) -> Topic:
    try:
        return _TOPIC_OF_CLASS[type(message)]
    except KeyError:
        raise KeyError(f"no topic carries {type(message).__name__}") from None


def key_for(message: c.Message) -> bytes:
    """The record key of a message, from its topic's key field."""
    return str(getattr(message, topic_for(message).key)).encode()
