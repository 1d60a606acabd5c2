"""The gateway use case with a hand-written publisher stub: what is published, and when not."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from decimal import Decimal

import pytest
from router_support import new_bot, signal_body
from test_domain import LIMITS, NOW

from egis_common.contracts import SignalAction
from signal_router.bots import BotView
from signal_router.gateway import Gateway
from signal_router.reasons import Rejected, RejectReason


class RecordingPublish:
    def __init__(self, fail: bool = False) -> None:
        self.published = []
        self.fail = fail

    async def __call__(self, signal) -> None:
        if self.fail:
            raise Rejected(RejectReason.BROKER_UNAVAILABLE, "down")
        self.published.append(signal)


def gateway_with_bot(publish=None, **bot_changes):
    view = BotView()
    bot, secret = new_bot(**bot_changes)
    view.apply(bot)
    view.ready = True
    return Gateway(view, LIMITS, publish or RecordingPublish(), clock=lambda: NOW), bot, secret


def body(bot, secret, **fields) -> bytes:
    return json.dumps(signal_body(bot, secret, **{"timestamp": NOW.isoformat(), **fields})).encode()


async def test_an_accepted_signal_is_published_with_its_bot_and_normalised_fields():
    gateway, bot, secret = gateway_with_bot()
    signal = await gateway.accept(
        body(
            bot,
            secret,
            action="SELL",
            symbol="ethusdt.P",
            size_usd="12.5",
            take_profit_price="90",
            stop_loss_price="110",
        )
    )
    assert gateway.publish.published == [signal]
    assert (signal.bot_id, signal.action, signal.symbol) == (bot.bot_id, SignalAction.OPEN_SHORT, "ETHUSDT")
    assert (signal.size_override_usd, signal.signal_timestamp) == (Decimal("12.5"), NOW)


async def test_a_repeated_post_gets_the_same_signal_id_and_offsets_do_not_matter():
    gateway, bot, secret = gateway_with_bot()
    first = await gateway.accept(body(bot, secret, signal_id="tv-1"))
    again = await gateway.accept(body(bot, secret, signal_id="tv-1", action="long"))
    assert first.signal_id == again.signal_id and first.message_id != again.message_id
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    utc = await gateway.accept(body(bot, secret, signal_id=None))
    shifted = await gateway.accept(body(bot, secret, signal_id=None, timestamp=plus_two.isoformat()))
    assert utc.dedup_key == shifted.dedup_key


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"secret": "wrong"}, RejectReason.UNAUTHORIZED),
        ({"signal_key": "unknown"}, RejectReason.UNAUTHORIZED),
        ({"action": "hold"}, RejectReason.UNKNOWN_ACTION),
        ({"symbol": "PEPEUSDT"}, RejectReason.UNKNOWN_SYMBOL),
        ({"size_usd": "2000000"}, RejectReason.SIZE_OUT_OF_RANGE),
        ({"timestamp": (NOW - timedelta(hours=1)).isoformat()}, RejectReason.STALE_SIGNAL),
        ({"timestamp": (NOW + timedelta(hours=1)).isoformat()}, RejectReason.TIMESTAMP_IN_FUTURE),
    ],
)
async def test_a_refused_signal_is_not_published(fields, reason):
    gateway, bot, secret = gateway_with_bot()
    with pytest.raises(Rejected) as refused:
        await gateway.accept(json.dumps({**signal_body(bot, secret, timestamp=NOW.isoformat()), **fields}).encode())
    assert refused.value.reason is reason
    assert gateway.publish.published == []


async def test_while_the_view_loads_or_kafka_is_down_the_signal_is_refused_as_unavailable():
    gateway, bot, secret = gateway_with_bot(RecordingPublish(fail=True))
    with pytest.raises(Rejected) as down:
        await gateway.accept(body(bot, secret))
    gateway.view.ready = False
    with pytest.raises(Rejected) as loading:
        await gateway.accept(body(bot, secret))
    assert (down.value.reason, loading.value.reason) == (RejectReason.BROKER_UNAVAILABLE, RejectReason.BOTS_LOADING)
