"""The webhook gateway's use case: a posted body in, a `SignalReceived` durably in Kafka out.

Order of checks: the body's shape, then who sent it, then what it means. A
caller without the bot's secret learns nothing past the shape of a body; an
unknown key and a wrong secret get the same answer (`unauthorized`).

A post whose dedup key the router decided before is answered as a duplicate
and not published again, when one primary-key read says so in time; a
duplicate the read misses (a concurrent one, or a slow database) is published,
and the router's dedup makes it a `duplicate_signal` skip. Refusals and known
duplicates are journalled (`SignalJournaled`) without waiting for Kafka.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from egis_common.contracts import BotSnapshot, SignalJournaled, SignalReceived, utc_now
from egis_common.ids import signal_dedup_key, signal_id_for
from signal_router import domain
from signal_router.bots import BotView
from signal_router.reasons import Rejected, RejectReason
from signal_router.webhook import WebhookSignal, parse_signal

# Awaits the broker's acks=all; raises Rejected(BROKER_UNAVAILABLE) when Kafka cannot take it.
Publish = Callable[[SignalReceived], Awaitable[None]]
# True when the router already decided this dedup key; False when not, or when it cannot tell in time.
Decided = Callable[[str], Awaitable[bool]]
# Hands a journal entry to Kafka without waiting for it.
Journal = Callable[[SignalJournaled], None]


async def _never_decided(_dedup_key: str) -> bool:
    return False


def _no_journal(_entry: SignalJournaled) -> None:
    return None


@dataclass(frozen=True)
class Receipt:
    signal: SignalReceived
    duplicate: bool = False  # decided before: not published again


class Gateway:
    def __init__(
        self,
        view: BotView,
        limits: domain.Limits,
        publish: Publish,
        clock: Callable[[], datetime] = utc_now,
        *,
        decided: Decided = _never_decided,
        journal: Journal = _no_journal,
    ) -> None:
        self.view = view
        self.limits = limits
        self.publish = publish
        self.clock = clock
        self.decided = decided
        self.journal = journal

    async def accept(self, body: bytes) -> Receipt:
        """Publish the signal, or say it is a duplicate; raises `Rejected` with the reason otherwise."""
        if not self.view.ready:
            raise Rejected(RejectReason.BOTS_LOADING, "the bot view is still loading")
        webhook = parse_signal(body)
        bot = self.view.authenticate(webhook.signal_key, webhook.secret)
        if bot is None:
            rejected = Rejected(RejectReason.UNAUTHORIZED, "unknown signal key or wrong secret")
            rejected.bot_id = self._named_bot(webhook.signal_key)
            raise rejected
        try:
            signal = self.signal_from(webhook, bot)
        except Rejected as rejected:
            rejected.bot_id = bot.bot_id
            raise
        if await self.decided(signal.dedup_key):
            self.journal(domain.journaled_duplicate(signal))
            return Receipt(signal, duplicate=True)
        await self.publish(signal)
        return Receipt(signal)

    def refused(self, rejected: Rejected) -> None:
        """Journal a refusal for the owner of the bot it named (if any): reason and time, never the body."""
        self.journal(domain.journaled_rejection(rejected, rejected.bot_id, self.clock()))

    def _named_bot(self, signal_key: str) -> UUID | None:
        """The live bot a post with a wrong secret named, so its owner sees the refusals."""
        live = [bot for bot in self.view.with_key(signal_key) if not bot.deleted]
        return live[0].bot_id if live else None

    def signal_from(self, webhook: WebhookSignal, bot: BotSnapshot) -> SignalReceived:
        action = domain.parse_action(webhook.action)
        symbol = domain.normalize_symbol(webhook.symbol, self.limits)
        domain.check_order(action, webhook.size_usd, webhook.take_profit_price, webhook.stop_loss_price, self.limits)
        timestamp = webhook.timestamp  # in UTC since parsing
        domain.check_fresh(timestamp, self.clock(), self.limits)
        dedup_key = signal_dedup_key(webhook.signal_key, action.value, symbol, timestamp, webhook.signal_id)
        return SignalReceived(
            signal_id=signal_id_for(dedup_key),
            dedup_key=dedup_key,
            signal_key=webhook.signal_key,
            bot_id=bot.bot_id,
            action=action,
            symbol=symbol,
            size_override_usd=webhook.size_usd,
            take_profit_price=webhook.take_profit_price,
            stop_loss_price=webhook.stop_loss_price,
            signal_timestamp=timestamp,
            client_signal_id=webhook.signal_id,
        )
