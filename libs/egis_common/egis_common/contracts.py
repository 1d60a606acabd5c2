"""The v1 message contracts of every Egis topic.

Every message is frozen, carries a unique `message_id`, an aware
`occurred_at`, a `schema_version` and a `type` discriminator; `bot_id`
wherever a bot is known. Money fields use the decimal-string types of
`egis_common.money`. The topic each message travels on lives in
`egis_common.topics`.

Contracts evolve (docs/contracts.md): a reader ignores fields it does not
know, so a producer one release ahead can add a field without a consumer
dead-lettering it; a field added to a v1 message is optional, and anything
incompatible is a new topic version. Known fields stay strict: a wrong type,
a float for money or a naive time is refused as before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from egis_common.money import Percent, PositiveUsd, Price, Quantity, SignedUsd, Usd

SCHEMA_VERSION = 1
# A bot's take-profit and stop-loss as percentages from the entry. A stop loss of 100% or more would sit
# at or beyond zero for a long; a take profit beyond 1000% is a typo. The ledger's CHECKs hold the same bounds.
MAX_TAKE_PROFIT_PCT = Decimal("1000")
MAX_STOP_LOSS_PCT = Decimal("100")  # exclusive
TakeProfitPct = Annotated[Percent, Field(le=MAX_TAKE_PROFIT_PCT)]
StopLossPct = Annotated[Percent, Field(lt=MAX_STOP_LOSS_PCT)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # The contract revision the producer was built with; on a v1 topic every revision reads as v1.
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    message_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)


# --- vocabularies -----------------------------------------------------------


class Side(str, Enum):
    LONG = "long"
    SHORT = "short"


class IntentKind(str, Enum):
    OPEN = "open"
    CLOSE = "close"


class SignalAction(str, Enum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    CLOSE = "close"


class ExchangeName(str, Enum):
    PAPER = "paper"
    BINANCE_USDM = "binance_usdm"


class SignalSkipReason(str, Enum):
    UNKNOWN_SIGNAL_KEY = "unknown_signal_key"
    BOT_DELETED = "bot_deleted"
    BOT_PAUSED = "bot_paused"
    DUPLICATE_SIGNAL = "duplicate_signal"
    STALE_SIGNAL = "stale_signal"


class PreflightRejectReason(str, Enum):
    EXISTING_OPEN_POSITION = "existing_open_position"
    NO_OPEN_POSITION_TO_CLOSE = "no_open_position_to_close"
    INSUFFICIENT_BUDGET = "insufficient_budget"
    ACCOUNT_SYMBOL_IN_USE = "account_symbol_in_use"
    BOT_DELETED = "bot_deleted"
    BOT_PAUSED = "bot_paused"
    UNKNOWN_BOT = "unknown_bot"
    BELOW_MIN_SIZE = "below_min_size"
    # A close that waited behind its bot's open on the symbol, and that open failed: nothing to close.
    OPEN_FAILED = "open_failed"
    # A reservation that waited behind an order in flight for longer than the ledger's limit.
    WAIT_EXPIRED = "wait_expired"
    # The command names an exchange account other than its bot's: no message names a bot's account for it.
    ACCOUNT_MISMATCH = "account_mismatch"


# --- egis.signals.* ---------------------------------------------------------


class SignalReceived(Message):
    type: Literal["SignalReceived"] = "SignalReceived"
    signal_id: UUID
    dedup_key: str = Field(max_length=200)
    signal_key: str = Field(min_length=1, max_length=128)
    bot_id: UUID
    action: SignalAction
    symbol: str = Field(min_length=1, max_length=32)
    size_override_usd: PositiveUsd | None = None
    take_profit_price: Price | None = None
    stop_loss_price: Price | None = None
    signal_timestamp: AwareDatetime | None = None
    client_signal_id: str | None = Field(default=None, max_length=100)


class SignalSkipped(Message):
    type: Literal["SignalSkipped"] = "SignalSkipped"
    signal_id: UUID
    signal_key: str
    bot_id: UUID | None = None
    reason: SignalSkipReason
    detail: str = ""


class SignalOutcome(str, Enum):
    ROUTED = "routed"  # the router made an order intent of it
    SKIPPED = "skipped"  # the router skipped it, with a SignalSkipReason
    DUPLICATE = "duplicate"  # its dedup key was taken before: the gateway knew it, or the router found it
    REJECTED = "rejected"  # the gateway refused the post, with its reason; nothing was published


# --- egis.router.signal-journal.v1 ------------------------------------------


class SignalJournaled(Message):
    """What became of one webhook post, for its owner to read (the ledger keeps the journal).

    Never a secret, nor the body: a rejected post carries its reason, and its bot when the post named a
    known signal key; its signal_id only where the gateway had derived one.
    """

    type: Literal["SignalJournaled"] = "SignalJournaled"
    outcome: SignalOutcome
    signal_id: UUID | None = None
    bot_id: UUID | None = None
    reason: str | None = Field(default=None, max_length=64)  # the skip's or the rejection's reason
    detail: str = Field(default="", max_length=300)
    intent_id: UUID | None = None  # routed only
    intent: IntentKind | None = None
    action: SignalAction | None = None
    symbol: str | None = Field(default=None, max_length=32)
    received_at: AwareDatetime  # when the gateway took (or refused) the post


# --- egis.router.intents.v1 -------------------------------------------------


def _an_open_has_a_side(intent: IntentKind, side: Side | None) -> None:
    """A missing side means "whatever position the bot holds", which only a close can mean: an open without
    one would be booked on no side, and its order would go out on a side nobody chose."""
    if intent is IntentKind.OPEN and side is None:
        raise ValueError("an open needs a side (long or short); only a close may leave it out")


class OrderIntent(Message):
    type: Literal["OrderIntent"] = "OrderIntent"
    intent_id: UUID
    signal_id: UUID
    bot_id: UUID
    intent: IntentKind
    # None only for a close: "whatever position this bot holds on the symbol" (the ledger knows its side).
    side: Side | None
    symbol: str
    # For a close the position's own executed size is closed; no size is requested.
    requested_size_usd: PositiveUsd | None = None
    take_profit_price: Price | None = None
    stop_loss_price: Price | None = None
    # The bot's percentages from the entry, for a leg the signal gave no price for; the executor turns them
    # into trigger prices once the entry's average price is known. An explicit price always wins.
    take_profit_pct: TakeProfitPct | None = None
    stop_loss_pct: StopLossPct | None = None
    exchange: ExchangeName
    exchange_account: str

    @model_validator(mode="after")
    def _open_has_side(self) -> Self:
        _an_open_has_a_side(self.intent, self.side)
        return self


# --- egis.ledger.commands.v1 ------------------------------------------------


class ReserveBudget(Message):
    type: Literal["ReserveBudget"] = "ReserveBudget"
    intent_id: UUID
    bot_id: UUID
    intent: IntentKind
    side: Side | None  # None only for a close of whatever position the bot holds on the symbol
    symbol: str
    requested_size_usd: PositiveUsd | None = None
    exchange_account: str
    # A close names the position it closes when the executor knows it.
    position_id: UUID | None = None

    @model_validator(mode="after")
    def _open_has_side(self) -> Self:
        _an_open_has_a_side(self.intent, self.side)
        return self


class BackfillClosure(Message):
    type: Literal["BackfillClosure"] = "BackfillClosure"
    bot_id: UUID
    position_id: UUID
    close_exchange_order_id: str
    close_price: Price
    closed_at: AwareDatetime
    realised_pnl_usd: SignedUsd
    fee_usd: Usd
    evidence: dict[str, Any] = Field(default_factory=dict)


class ReleaseReservation(Message):
    """The reconciler found that a pending order never reached the exchange. Not for a close not found after the
    venue's window: the executor sends that close again and reports how it ends (OrderFilled or OrderRejected)."""

    type: Literal["ReleaseReservation"] = "ReleaseReservation"
    bot_id: UUID
    intent_id: UUID
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class ApplyFoundFill(Message):
    """The reconciler found on the exchange the fill of an order whose outcome was unknown."""

    type: Literal["ApplyFoundFill"] = "ApplyFoundFill"
    bot_id: UUID
    intent_id: UUID
    position_id: UUID
    intent: IntentKind
    client_order_id: str
    exchange_order_id: str
    executed_qty: Quantity
    avg_price: Price
    fee_usd: Usd
    realised_pnl_usd: SignedUsd | None = None
    filled_at: AwareDatetime
    evidence: dict[str, Any] = Field(default_factory=dict)


# --- egis.ledger.events.v1 --------------------------------------------------


class BudgetReserved(Message):
    type: Literal["BudgetReserved"] = "BudgetReserved"
    intent_id: UUID
    bot_id: UUID
    position_id: UUID
    intent: IntentKind
    side: Side
    symbol: str
    reserved_usd: Usd
    # For a close: the quantity the exchange must sell or buy back.
    close_qty: Quantity | None = None


class PreflightRejected(Message):
    type: Literal["PreflightRejected"] = "PreflightRejected"
    intent_id: UUID
    bot_id: UUID
    reason: PreflightRejectReason
    detail: str = ""


class PositionOpened(Message):
    type: Literal["PositionOpened"] = "PositionOpened"
    bot_id: UUID
    position_id: UUID
    symbol: str
    side: Side
    requested_size_usd: Usd
    size_usd: Usd
    executed_qty: Quantity
    avg_entry_price: Price
    opened_at: AwareDatetime
    # The intent whose execution (or release) made this change; None for a change no intent made (a backfill).
    intent_id: UUID | None = None


class PositionClosed(Message):
    type: Literal["PositionClosed"] = "PositionClosed"
    bot_id: UUID
    position_id: UUID
    symbol: str
    close_exchange_order_id: str
    close_price: Price
    closed_at: AwareDatetime
    realised_pnl_usd: SignedUsd
    fee_usd: Usd
    # True when the close facts came from the reconciler's evidence, not a fill we placed.
    backfilled: bool = False
    intent_id: UUID | None = None  # as on PositionOpened


class PositionReduced(Message):
    """A close order filled partially: the executed part is realised, the rest stays open."""

    type: Literal["PositionReduced"] = "PositionReduced"
    bot_id: UUID
    position_id: UUID
    symbol: str
    closed_qty: Quantity
    remaining_qty: Quantity
    size_usd: Usd
    realised_pnl_usd: SignedUsd
    intent_id: UUID | None = None  # as on PositionOpened


class PositionFailed(Message):
    type: Literal["PositionFailed"] = "PositionFailed"
    bot_id: UUID
    position_id: UUID
    reason: str
    intent_id: UUID | None = None  # as on PositionOpened


class CloseRejected(Message):
    type: Literal["CloseRejected"] = "CloseRejected"
    bot_id: UUID
    position_id: UUID
    reason: str
    intent_id: UUID | None = None  # as on PositionOpened


class BudgetChanged(Message):
    type: Literal["BudgetChanged"] = "BudgetChanged"
    bot_id: UUID
    initial_usd: Usd
    reserved_open_usd: Usd
    reserved_opening_usd: Usd
    available_usd: SignedUsd


# --- egis.ledger.bots.v1 (compacted) ----------------------------------------


class BotSnapshot(Message):
    type: Literal["BotSnapshot"] = "BotSnapshot"
    bot_id: UUID
    version: int = Field(ge=1)
    owner_id: UUID
    name: str
    strategy: Literal["signal_hook"] = "signal_hook"
    signal_key: str
    # A salted hash; the secret itself never leaves the ledger's create call.
    webhook_secret_hash: str
    exchange: ExchangeName
    exchange_account: str
    initial_budget_usd: Usd
    default_order_size_usd: PositiveUsd
    paused: bool
    deleted: bool
    # Optional so that snapshots published before these fields existed still parse.
    take_profit_pct: TakeProfitPct | None = None
    stop_loss_pct: StopLossPct | None = None


# --- egis.executor.executions.v1 --------------------------------------------


class OrderFilled(Message):
    type: Literal["OrderFilled"] = "OrderFilled"
    intent_id: UUID
    bot_id: UUID
    position_id: UUID
    intent: IntentKind
    symbol: str
    side: Side
    client_order_id: str
    exchange_order_id: str
    executed_qty: Quantity
    avg_price: Price
    fee_usd: Usd
    realised_pnl_usd: SignedUsd | None = None
    partial: bool = False
    filled_at: AwareDatetime


class OrderRejected(Message):
    type: Literal["OrderRejected"] = "OrderRejected"
    intent_id: UUID
    bot_id: UUID
    position_id: UUID
    intent: IntentKind
    client_order_id: str
    exchange_code: str
    reason: str


class OrderPendingReconciliation(Message):
    type: Literal["OrderPendingReconciliation"] = "OrderPendingReconciliation"
    intent_id: UUID
    bot_id: UUID
    position_id: UUID
    intent: IntentKind
    symbol: str
    client_order_id: str
    exchange: ExchangeName
    exchange_account: str
    cause: str
    exchange_response: dict[str, Any] | None = None
    # When the executor stopped (or would have stopped) waiting for the exchange call: the order's own
    # not_after, which the paper venue holds to, so that its "not found" after it is final. None: not said.
    not_after: AwareDatetime | None = None


class ProtectiveOrdersPlaced(Message):
    """The take-profit and stop-loss of a filled open that the venue accepted; sent only when one was."""

    type: Literal["ProtectiveOrdersPlaced"] = "ProtectiveOrdersPlaced"
    intent_id: UUID  # the open intent whose fill the stops protect
    bot_id: UUID
    position_id: UUID
    # Client algo ids, not the venue's algo ids: derived from the open intent (egis_common.ids.client_order_id),
    # they are deterministic, and they are what the reconciler looks the orders up by.
    tp_order_id: str | None = None
    sl_order_id: str | None = None


# --- egis.executor.commands.v1 ----------------------------------------------


class FoundFill(BaseModel):
    """A fill the venue reported for an order whose outcome was unknown."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    exchange_order_id: str = Field(min_length=1)
    executed_qty: Annotated[Quantity, Field(gt=0)]
    avg_price: Price
    fee_usd: Usd
    realised_pnl_usd: SignedUsd | None = None
    filled_at: AwareDatetime


class RecordResolution(Message):
    """The reconciler settled one of the executor's pending orders: the executor records how, and when."""

    type: Literal["RecordResolution"] = "RecordResolution"
    intent_id: UUID
    bot_id: UUID
    resolution: str  # the reconciler's Resolution value (found_filled, rejected_by_exchange, ...)
    resolved_by: str  # "auto", or "operator:<id>" for a confirmed resolve-pending
    resolved_at: AwareDatetime
    fill: FoundFill | None = None  # for found_filled: what the venue filled
    evidence: dict[str, Any] = Field(default_factory=dict)


# The paper venue's positions, for reconcile-paper-positions: the reconciler finds a row of the venue's table
# that no longer follows the venue's fills, and the executor, whose schema holds the table, repairs it.

# A quantity with a sign, as a position carries it: > 0 long, < 0 short, 0 flat.
SignedQuantity = SignedUsd


class PaperPosition(BaseModel):
    """One position of the paper venue: signed quantity and entry price (both 0 when flat)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    qty: SignedQuantity
    entry_price: Quantity


class RepairPaperPositions(Message):
    """A confirmed reconcile-paper-positions: each position as the venue's fills made it when the reconciler
    looked. The executor writes a position only if its row still differs and the fills still say the same."""

    type: Literal["RepairPaperPositions"] = "RepairPaperPositions"
    request_id: UUID  # the admin command's
    # No bot: paper positions are kept per exchange account. The topic is keyed by bot_id, so every repair has
    # the same key and they are applied one after another, in the order sent.
    bot_id: UUID | None = None
    repairs: list[PaperPosition]


class PaperRepairSkip(str, Enum):
    ALREADY_MATCHING = "already_matching"  # the row already follows the fills (repaired before, or redelivered)
    FILLS_MOVED = "fills_moved"  # the venue booked since the reconciler looked: a new run shows what to do


class PaperPositionSkipped(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    account: str
    symbol: str
    reason: PaperRepairSkip


# --- egis.executor.paper-repairs.v1 -----------------------------------------


class PaperPositionsRepaired(Message):
    """What the executor did with a RepairPaperPositions: the rows it wrote, and why it left the others."""

    type: Literal["PaperPositionsRepaired"] = "PaperPositionsRepaired"
    request_id: UUID
    changed: list[PaperPosition] = Field(default_factory=list)  # as written
    skipped: list[PaperPositionSkipped] = Field(default_factory=list)


# --- egis.exchange.facts.v1 and mark prices ---------------------------------


class _ExchangeFact(Message):
    exchange: ExchangeName
    exchange_account: str
    symbol: str
    bot_id: UUID | None = None
    event_time: AwareDatetime
    # The venue's payload as received, kept as evidence; never read for money.
    raw: dict[str, Any] = Field(default_factory=dict)


class ExchangeOrderFact(_ExchangeFact):
    type: Literal["ExchangeOrderFact"] = "ExchangeOrderFact"
    exchange_order_id: str
    client_order_id: str
    status: str
    side: Literal["BUY", "SELL"]
    order_type: str
    reduce_only: bool
    orig_qty: Quantity
    executed_qty: Quantity
    avg_price: Quantity


class ExchangeAlgoOrderFact(_ExchangeFact):
    type: Literal["ExchangeAlgoOrderFact"] = "ExchangeAlgoOrderFact"
    algo_id: str
    client_algo_id: str
    status: str
    order_type: str
    side: Literal["BUY", "SELL"]
    trigger_price: Price
    # The regular order a triggered algo order spawned, once known.
    spawned_order_id: str | None = None


class ExchangeTradeFact(_ExchangeFact):
    type: Literal["ExchangeTradeFact"] = "ExchangeTradeFact"
    trade_id: str
    exchange_order_id: str
    side: Literal["BUY", "SELL"]
    price: Price
    qty: Quantity
    realised_pnl_usd: SignedUsd
    commission: Usd
    commission_asset: str


# Any one of the venue's facts: what a user data stream or its REST catch-up reports.
ExchangeFact = ExchangeOrderFact | ExchangeAlgoOrderFact | ExchangeTradeFact


class MarkPrice(Message):
    type: Literal["MarkPrice"] = "MarkPrice"
    symbol: str
    price: Price


# --- egis.reconciler.admin.v1 and replies -----------------------------------


class AdminCommandName(str, Enum):
    SYNC_WRONG_CLOSED_POSITIONS = "sync-wrong-closed-positions"
    RECONCILE_PAPER_POSITIONS = "reconcile-paper-positions"
    RESOLVE_PENDING = "resolve-pending"
    DRIFT_REPORT = "drift-report"


class AdminCommand(Message):
    type: Literal["AdminCommand"] = "AdminCommand"
    request_id: UUID
    command: AdminCommandName
    confirm: bool = False
    bot_id: UUID | None = None
    operator_id: str
    # HMAC of the canonical command by the operator's key, checked by the reconciler.
    signature: str


class AdminReply(Message):
    type: Literal["AdminReply"] = "AdminReply"
    request_id: UUID
    command: AdminCommandName
    status: Literal["ok", "refused", "failed"]
    dry_run: bool
    report: dict[str, Any] = Field(default_factory=dict)
    # A report too large for one message comes in `parts` replies: each carries the summary and a slice of
    # every list of lines, in order; joined in part order they are the whole report.
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)
