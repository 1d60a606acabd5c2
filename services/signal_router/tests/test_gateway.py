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
    receipt = await gateway.accept(
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
    signal = receipt.signal
    assert gateway.publish.published == [signal] and not receipt.duplicate
    assert (signal.bot_id, signal.action, signal.symbol) == (bot.bot_id, SignalAction.OPEN_SHORT, "ETHUSDT")
    assert (signal.size_override_usd, signal.signal_timestamp) == (Decimal("12.5"), NOW)


async def test_a_repeated_post_gets_the_same_signal_id_and_offsets_do_not_matter():
    gateway, bot, secret = gateway_with_bot()
    first = (await gateway.accept(body(bot, secret, signal_id="tv-1"))).signal
    again = (await gateway.accept(body(bot, secret, signal_id="tv-1", action="long"))).signal
    assert first.signal_id == again.signal_id and first.message_id != again.message_id
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    utc = (await gateway.accept(body(bot, secret, signal_id=None))).signal
    shifted = (await gateway.accept(body(bot, secret, signal_id=None, timestamp=plus_two.isoformat()))).signal
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


async def test_a_post_decided_before_is_a_duplicate_journalled_and_not_published_again():
    journal = []

    async def decided(dedup_key: str) -> bool:
        return dedup_key == "client:" + bot.signal_key + ":tv-9"

    gateway, bot, secret = gateway_with_bot()
    gateway.decided, gateway.journal = decided, journal.append
    fresh = await gateway.accept(body(bot, secret, signal_id="tv-8"))
    repeated = await gateway.accept(body(bot, secret, signal_id="tv-9"))
    assert (fresh.duplicate, repeated.duplicate) == (False, True)
    assert gateway.publish.published == [fresh.signal]
    ((entry),) = journal
    assert (entry.outcome.value, entry.signal_id, entry.bot_id) == ("duplicate", repeated.signal.signal_id, bot.bot_id)


async def test_a_refusal_names_the_bot_its_key_names_even_with_a_wrong_secret_and_journals_no_secret():
    journal = []
    gateway, bot, secret = gateway_with_bot()
    gateway.journal = journal.append
    for fields in ({"secret": "wrong-secret-xyz"}, {"signal_key": "nobody"}, {"symbol": "PEPEUSDT"}):
        with pytest.raises(Rejected) as refused:
            await gateway.accept(json.dumps({**signal_body(bot, secret, timestamp=NOW.isoformat()), **fields}).encode())
        gateway.refused(refused.value)
    assert [(e.outcome.value, e.reason, e.bot_id) for e in journal] == [
        ("rejected", "unauthorized", bot.bot_id),
        ("rejected", "unauthorized", None),
        ("rejected", "unknown_symbol", bot.bot_id),
    ]
    assert all("wrong-secret-xyz" not in e.model_dump_json() and secret not in e.model_dump_json() for e in journal)
