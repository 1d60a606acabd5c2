"""The signal router's rules. Pure: no I/O, no clock, no async.

Action words (case-insensitive, surrounding spaces ignored; `-` and ` ` count as `_`):

    buy, long, open_long, enter_long                      -> open long
    sell, short, open_short, enter_short                  -> open short
    exit, close, flat, close_all,
    close_long, close_short, exit_long, exit_short        -> close

`sell` opens a short, as in TradingView's `{{strategy.order.action}}` of a
long/short strategy. A long-only strategy must send `exit` or `close` to
leave: a `sell` there asks for a short, which the ledger refuses while the
long is open (`existing_open_position`), so the mistake fails safe.
A close closes whatever position the bot holds on the symbol (one-way mode
allows one); `close_long` and `close_short` are accepted as plain closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from egis_common.contracts import (
    BotSnapshot,
    IntentKind,
    OrderIntent,
    Side,
    SignalAction,
    SignalJournaled,
    SignalOutcome,
    SignalReceived,
    SignalSkipped,
    SignalSkipReason,
)
from egis_common.ids import intent_id_for
from signal_router.reasons import Rejected, RejectReason

_OPEN_LONG = ("buy", "long", "open_long", "enter_long")
_OPEN_SHORT = ("sell", "short", "open_short", "enter_short")
_CLOSE = ("exit", "close", "flat", "close_all", "close_long", "close_short", "exit_long", "exit_short")
ACTION_WORDS: dict[str, SignalAction] = {
    **dict.fromkeys(_OPEN_LONG, SignalAction.OPEN_LONG),
    **dict.fromkeys(_OPEN_SHORT, SignalAction.OPEN_SHORT),
    **dict.fromkeys(_CLOSE, SignalAction.CLOSE),
}
# A close names no side: it closes whatever position the bot holds on the symbol,
# and only the ledger knows that position's side.
_SIDES = {SignalAction.OPEN_LONG: Side.LONG, SignalAction.OPEN_SHORT: Side.SHORT, SignalAction.CLOSE: None}


@dataclass(frozen=True)
class Limits:
    symbols: frozenset[str]
    min_size_usd: Decimal
    max_size_usd: Decimal
    max_lag: timedelta
    max_skew: timedelta


def parse_action(word: str) -> SignalAction:
    key = word.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in ACTION_WORDS:
        raise Rejected(RejectReason.UNKNOWN_ACTION, "action must be one of: " + ", ".join(ACTION_WORDS), "action")
    return ACTION_WORDS[key]


def normalize_symbol(text: str, limits: Limits) -> str:
    """`btcusdt`, `BTCUSDT.P` (TradingView's perpetual suffix) -> `BTCUSDT`, if allowed."""
    symbol = text.strip().upper().removesuffix(".P")
    if symbol not in limits.symbols:
        raise Rejected(RejectReason.UNKNOWN_SYMBOL, f"{symbol[:32]!r} is not a tradable symbol", "symbol")
    return symbol


def check_order(
    action: SignalAction,
    size_usd: Decimal | None,
    take_profit: Decimal | None,
    stop_loss: Decimal | None,
    limits: Limits,
) -> None:
    if action is SignalAction.CLOSE:
        for field, value in (
            ("size_usd", size_usd),
            ("take_profit_price", take_profit),
            ("stop_loss_price", stop_loss),
        ):
            if value is not None:
                raise Rejected(RejectReason.NOT_ALLOWED_FOR_CLOSE, f"a close takes no {field}", field)
        return
    if size_usd is not None and not limits.min_size_usd <= size_usd <= limits.max_size_usd:
        detail = f"size_usd must be between {limits.min_size_usd} and {limits.max_size_usd}"
        raise Rejected(RejectReason.SIZE_OUT_OF_RANGE, detail, "size_usd")
    if take_profit is not None and stop_loss is not None:
        long = action is SignalAction.OPEN_LONG
        if (take_profit <= stop_loss) if long else (take_profit >= stop_loss):
            side = "above" if long else "below"
            raise Rejected(
                RejectReason.INCONSISTENT_TP_SL, f"take profit must be {side} stop loss", "take_profit_price"
            )


def check_fresh(timestamp: datetime | None, now: datetime, limits: Limits) -> None:
    """At the gateway: a signal already stale on arrival is refused, and so is one from the future."""
    if timestamp is None:
        return
    if timestamp < now - limits.max_lag:
        raise Rejected(RejectReason.STALE_SIGNAL, f"older than {limits.max_lag.total_seconds():.0f}s", "timestamp")
    if timestamp > now + limits.max_skew:
        raise Rejected(RejectReason.TIMESTAMP_IN_FUTURE, "timestamp is ahead of the server clock", "timestamp")


def is_stale(signal: SignalReceived, now: datetime, max_lag: timedelta) -> bool:
    """At the router: a signal without its own timestamp ages from the gateway's acceptance."""
    return (signal.signal_timestamp or signal.occurred_at) < now - max_lag


def route(
    signal: SignalReceived, bot: BotSnapshot | None, now: datetime, max_lag: timedelta
) -> OrderIntent | SignalSkipped:
    """One intent for a live bot's fresh signal, else a skip with its reason."""
    if bot is None or bot.signal_key != signal.signal_key:
        return skip(signal, SignalSkipReason.UNKNOWN_SIGNAL_KEY, "no bot has this key any more")
    if bot.deleted:
        return skip(signal, SignalSkipReason.BOT_DELETED, f"bot version {bot.version} is deleted")
    if bot.paused:
        return skip(signal, SignalSkipReason.BOT_PAUSED, f"bot version {bot.version} is paused")
    if is_stale(signal, now, max_lag):
        return skip(signal, SignalSkipReason.STALE_SIGNAL, f"older than {max_lag.total_seconds():.0f}s")
    return intent_for(signal, bot)


def intent_for(signal: SignalReceived, bot: BotSnapshot) -> OrderIntent:
    """An open takes the bot's TP/SL percentages for each leg the signal names no price for."""
    opening = signal.action is not SignalAction.CLOSE
    return OrderIntent(
        intent_id=intent_id_for(signal.signal_id),
        signal_id=signal.signal_id,
        bot_id=bot.bot_id,
        intent=IntentKind.OPEN if opening else IntentKind.CLOSE,
        side=_SIDES[signal.action],
        symbol=signal.symbol,
        requested_size_usd=(signal.size_override_usd or bot.default_order_size_usd) if opening else None,
        take_profit_price=signal.take_profit_price,
        stop_loss_price=signal.stop_loss_price,
        take_profit_pct=bot.take_profit_pct if opening and signal.take_profit_price is None else None,
        stop_loss_pct=bot.stop_loss_pct if opening and signal.stop_loss_price is None else None,
        exchange=bot.exchange,
        exchange_account=bot.exchange_account,
    )


def skip(signal: SignalReceived, reason: SignalSkipReason, detail: str = "") -> SignalSkipped:
    return SignalSkipped(
        signal_id=signal.signal_id,
        signal_key=signal.signal_key,
        bot_id=signal.bot_id,
        reason=reason,
        detail=detail,
    )


# --- the signal journal: what became of each post, for its owner -------------


def journaled(signal: SignalReceived, decision: OrderIntent | SignalSkipped) -> SignalJournaled:
    """The router's decision on a signal; a skip for a taken dedup key is the journal's `duplicate`."""
    if isinstance(decision, OrderIntent):
        outcome, reason, detail = SignalOutcome.ROUTED, None, ""
    elif decision.reason is SignalSkipReason.DUPLICATE_SIGNAL:
        outcome, reason, detail = SignalOutcome.DUPLICATE, decision.reason.value, decision.detail
    else:
        outcome, reason, detail = SignalOutcome.SKIPPED, decision.reason.value, decision.detail
    return SignalJournaled(
        outcome=outcome,
        signal_id=signal.signal_id,
        bot_id=signal.bot_id,
        reason=reason,
        detail=detail[:300],
        intent_id=decision.intent_id if isinstance(decision, OrderIntent) else None,
        intent=decision.intent if isinstance(decision, OrderIntent) else None,
        action=signal.action,
        symbol=signal.symbol,
        received_at=signal.occurred_at,
    )


def journaled_duplicate(signal: SignalReceived) -> SignalJournaled:
    """A post the gateway answered as a duplicate without publishing it: its dedup key was decided before."""
    return SignalJournaled(
        outcome=SignalOutcome.DUPLICATE,
        signal_id=signal.signal_id,
        bot_id=signal.bot_id,
        reason=SignalSkipReason.DUPLICATE_SIGNAL.value,
        detail="seen before: answered at the gateway",
        action=signal.action,
        symbol=signal.symbol,
        received_at=signal.occurred_at,
    )


def journaled_rejection(rejected: Rejected, bot_id: UUID | None, at: datetime) -> SignalJournaled:
    """A refused post: its reason and detail (never the body, which holds the secret), and its bot if known."""
    return SignalJournaled(
        outcome=SignalOutcome.REJECTED,
        bot_id=bot_id,
        reason=rejected.reason.value,
        detail=rejected.detail[:300],
        received_at=at,
    )
