"""The webhook gateway's use case: a posted body in, a `SignalReceived` durably in Kafka out.

Order of checks: the body's shape, then who sent it, then what it means. A
caller without the bot's secret learns nothing past the shape of a body; an
unknown key and a wrong secret get the same answer (`unauthorized`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from egis_common.contracts import BotSnapshot, SignalReceived, utc_now
from egis_common.ids import signal_dedup_key, signal_id_for
from signal_router import domain
from signal_router.bots import BotView
from signal_router.reasons import Rejected, RejectReason
from signal_router.webhook import WebhookSignal, parse_signal

# Awaits the broker's acks=all; raises Rejected(BROKER_UNAVAILABLE) when Kafka cannot take it.
Publish = Callable[[SignalReceived], Awaitable[None]]


class Gateway:
    def __init__(
        self,
        view: BotView,
        limits: domain.Limits,
        publish: Publish,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.view = view
        self.limits = limits
        self.publish = publish
        self.clock = clock

    async def accept(self, body: bytes) -> SignalReceived:
        """Publish the signal and return it; raises `Rejected` with the reason otherwise."""
        if not self.view.ready:
            raise Rejected(RejectReason.BOTS_LOADING, "the bot view is still loading")
        webhook = parse_signal(body)
        bot = self.view.authenticate(webhook.signal_key, webhook.secret)
        if bot is None:
            raise Rejected(RejectReason.UNAUTHORIZED, "unknown signal key or wrong secret")
        signal = self.signal_from(webhook, bot)
        await self.publish(signal)
        return signal

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
