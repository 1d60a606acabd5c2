"""From webhook to intent or skip, against real Kafka and Postgres, through real HTTP."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from router_support import new_bot, next_version, signal_body

from egis_common.contracts import IntentKind, OrderIntent, Side, SignalReceived, SignalSkipped
from egis_common.topics import SIGNALS_RECEIVED
from egis_localinfra.testing import eventually
from signal_router import repository

pytestmark = pytest.mark.infra


async def live_bot(service, producer, **changes):
    bot, secret = new_bot(**changes)
    await producer.send(bot)
    await eventually(lambda: _known(service, bot), what="bot in the view")
    return bot, secret


async def _known(service, bot):
    return service.view.get(bot.bot_id) == bot


async def test_a_valid_signal_becomes_exactly_one_intent_with_the_right_bot_intent_side_and_size(
    service, producer, tail, client
):
    bot, secret = await live_bot(service, producer)
    response = await client.post("/v1/signals", json=signal_body(bot, secret, action="buy", symbol="btcusdt.p"))
    assert response.status_code == 202, response.text
    signal_id = response.json()["signal_id"]

    (intent,) = await eventually(lambda: _intents(tail, bot), what="intent")
    assert str(intent.signal_id) == signal_id
    assert (intent.bot_id, intent.intent, intent.side) == (bot.bot_id, IntentKind.OPEN, Side.LONG)
    assert (intent.symbol, intent.requested_size_usd) == ("BTCUSDT", Decimal("100"))
    assert (intent.exchange, intent.exchange_account) == (bot.exchange, bot.exchange_account)

    # A later signal of the same key lands on the same partitions: once its intent is out,
    # anything the first signal could still produce would have come before it.
    later = signal_body(bot, secret, action="sell", size_usd="250.5", symbol="ETHUSDT")
    assert (await client.post("/v1/signals", json=later)).status_code == 202
    await eventually(lambda: _intents(tail, bot, count=2), what="second intent")
    first, second = _intents_now(tail, bot)
    assert first == intent
    assert (second.intent, second.side, second.requested_size_usd) == (IntentKind.OPEN, Side.SHORT, Decimal("250.5"))


async def test_a_close_becomes_a_close_intent_without_a_size(service, producer, tail, client):
    bot, secret = await live_bot(service, producer)
    assert (await client.post("/v1/signals", json=signal_body(bot, secret, action="Exit"))).status_code == 202
    (intent,) = await eventually(lambda: _intents(tail, bot), what="close intent")
    assert (intent.intent, intent.requested_size_usd, intent.symbol) == (IntentKind.CLOSE, None, "BTCUSDT")


async def test_the_same_signal_posted_twice_becomes_one_intent_and_the_repeat_is_answered_as_a_duplicate(
    service, producer, tail, client
):
    bot, secret = await live_bot(service, producer)
    body = signal_body(bot, secret)
    first = await client.post("/v1/signals", json=body)
    assert first.status_code == 202
    await eventually(lambda: _decided(service, bot.signal_key), what="the first post decided")

    second = await client.post("/v1/signals", json=body)
    assert (second.status_code, second.json()) == (200, {"signal_id": first.json()["signal_id"], "status": "duplicate"})
    assert len(_intents_now(tail, bot)) == 1
    assert len(tail.of(SignalReceived, signal_key=bot.signal_key)) == 1, "a known duplicate is not published again"
    async with service.runtime.engine.connect() as conn:
        (row,) = await repository.decisions_for(conn, bot.signal_key)
    assert (row.outcome, str(row.signal_id)) == ("routed", first.json()["signal_id"])


async def test_without_a_client_id_the_same_content_and_timestamp_is_one_signal(service, producer, tail, client):
    bot, secret = await live_bot(service, producer)
    stamp = datetime.now(UTC).replace(microsecond=0)
    bodies = [
        signal_body(bot, secret, signal_id=None, timestamp=stamp.isoformat()),
        signal_body(bot, secret, signal_id=None, timestamp=stamp.astimezone().isoformat(), action="LONG"),
    ]
    first = await client.post("/v1/signals", json=bodies[0])
    assert first.status_code == 202
    # A concurrent duplicate that the gateway published before the first was decided: the router skips it.
    (received,) = await eventually(lambda: _received(tail, bot.signal_key), what="the signal on its topic")
    await producer.send(received.model_copy(update={"message_id": uuid.uuid4()}), SIGNALS_RECEIVED)
    (skip,) = await eventually(lambda: _skips(tail, bot.signal_key), what="duplicate skipped")
    assert (skip.reason.value, str(skip.signal_id)) == ("duplicate_signal", first.json()["signal_id"])
    second = await client.post("/v1/signals", json=bodies[1])
    assert (second.status_code, second.json()["signal_id"]) == (200, first.json()["signal_id"])
    assert len(_intents_now(tail, bot)) == 1


async def _received(tail, signal_key):
    return tail.of(SignalReceived, signal_key=signal_key)


async def _decided(service, signal_key):
    async with service.runtime.engine.connect() as conn:
        return await repository.decisions_for(conn, signal_key)


async def test_a_wrong_secret_gets_401_and_produces_nothing(service, producer, tail, client):
    bot, secret = await live_bot(service, producer)
    wrong = await client.post("/v1/signals", json=signal_body(bot, secret + "x"))
    unknown_key = await client.post("/v1/signals", json=signal_body(bot, secret, signal_key="no-such-key"))
    assert wrong.status_code == unknown_key.status_code == 401
    assert (
        wrong.json()
        == unknown_key.json()
        == {"reason": "unauthorized", "detail": "unknown signal key or wrong secret", "field": None}
    )

    marker = await client.post("/v1/signals", json=signal_body(bot, secret))
    await eventually(lambda: _intents(tail, bot), what="marker routed")
    received = tail.of(SignalReceived, signal_key=bot.signal_key)
    assert [str(r.signal_id) for r in received] == [marker.json()["signal_id"]]


@pytest.mark.parametrize(("change", "reason"), [({"deleted": True}, "bot_deleted"), ({"paused": True}, "bot_paused")])
async def test_a_signal_for_a_deleted_or_paused_bot_is_skipped_with_its_reason(
    service, producer, tail, client, change, reason
):
    bot, secret = await live_bot(service, producer)
    changed = next_version(bot, **change)
    await producer.send(changed)
    await eventually(lambda: _known(service, changed), what="bot change in the view")
    counted = REGISTRY.get_sample_value("egis_router_signals_skipped_total", {"reason": reason}) or 0

    response = await client.post("/v1/signals", json=signal_body(bot, secret))
    assert response.status_code == 202, "the secret matches: the skip, not the gateway, says why"
    (skip,) = await eventually(lambda: _skips(tail, bot.signal_key), what="skip")
    assert (skip.reason.value, skip.bot_id, str(skip.signal_id)) == (reason, bot.bot_id, response.json()["signal_id"])
    assert _intents_now(tail, bot) == []
    assert REGISTRY.get_sample_value("egis_router_signals_skipped_total", {"reason": reason}) == counted + 1


async def test_a_tombstoned_bot_is_gone_and_its_secret_gets_401(service, producer, client):
    bot, secret = await live_bot(service, producer)
    await producer.tombstone(bot.bot_id)

    async def gone():
        return service.view.get(bot.bot_id) is None

    await eventually(gone, what="bot removed")
    assert (await client.post("/v1/signals", json=signal_body(bot, secret))).status_code == 401


async def test_a_bot_created_after_the_router_started_is_routable_within_one_second(service, producer, tail, client):
    bot, secret = new_bot()
    body = signal_body(bot, secret)
    await producer.send(bot)
    published = time.monotonic()

    async def accepted():
        return (await client.post("/v1/signals", json=body)).status_code == 202

    await eventually(accepted, timeout=5, interval=0.01, what="bot routable")
    assert time.monotonic() - published < 1.0
    (intent,) = await eventually(lambda: _intents(tail, bot), what="intent")
    assert intent.bot_id == bot.bot_id


async def test_a_restarted_service_rebuilds_the_whole_view_from_the_topic(service, producer, router_settings):
    from signal_router.main import create_service

    bot, _ = await live_bot(service, producer)
    deleted = next_version(bot, deleted=True)
    await producer.send(deleted)
    await eventually(lambda: _known(service, deleted), what="deletion in the view")
    restarted = create_service(router_settings, migrate=False)
    await restarted.wiring.bots_feed.start(30)
    try:
        assert restarted.view.get(bot.bot_id) == deleted
        assert sorted(restarted.view.bots(), key=str) == sorted(service.view.bots(), key=str)
    finally:
        await restarted.wiring.bots_feed.stop()


async def test_a_signal_already_stale_at_the_gateway_is_refused(service, producer, client):
    bot, secret = await live_bot(service, producer)
    old = (datetime.now(UTC) - timedelta(seconds=service.runtime.settings.max_signal_lag_seconds + 5)).isoformat()
    response = await client.post("/v1/signals", json=signal_body(bot, secret, timestamp=old))
    assert (response.status_code, response.json()["reason"]) == (422, "stale_signal")


async def _intents(tail, bot, count=1):
    found = _intents_now(tail, bot)
    return found if len(found) >= count else None


def _intents_now(tail, bot):
    return tail.of(OrderIntent, bot_id=bot.bot_id)


async def _skips(tail, signal_key):
    return tail.of(SignalSkipped, signal_key=signal_key) or None
