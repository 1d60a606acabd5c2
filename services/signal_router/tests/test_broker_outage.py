"""With the broker stopped the gateway answers 503, and nothing is lost or written later.

The test runs its own Kafka (the session's is shared) and restarts it on the
same ports, so the gateway's producer could deliver anything it still held.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from router_support import Producer, new_bot, signal_body

from egis_common.contracts import SignalReceived
from egis_common.kafka_admin import ensure_topics
from egis_common.topics import SIGNALS_RECEIVED
from egis_localinfra import kafka as local_kafka
from egis_localinfra.testing import eventually

pytestmark = pytest.mark.infra


class PrivateKafka:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.bootstrap = ""

    async def start(self) -> None:
        self.bootstrap = (await asyncio.to_thread(local_kafka.start_kafka, self.state_dir)).bootstrap

    async def stop(self) -> None:
        await asyncio.to_thread(local_kafka.stop_kafka, self.state_dir)

    async def restart_on_the_same_ports(self, monkeypatch: pytest.MonkeyPatch) -> None:
        listeners = re.findall(r"127\.0\.0\.1:(\d+)", (self.state_dir / "server.properties").read_text())
        ports = [int(listeners[0]), int(listeners[1])]  # PLAINTEXT, CONTROLLER
        monkeypatch.setattr(local_kafka, "free_ports", lambda count: ports)
        await self.start()


@pytest.fixture
async def kafka(tmp_path):
    private = PrivateKafka(tmp_path / "kafka")
    await private.start()
    await ensure_topics(private.bootstrap)
    yield private
    await private.stop()


@pytest.fixture
async def gateway(kafka, router_settings):
    """The gateway half of the service only: its router would share the session's outbox table."""
    from signal_router.main import create_service

    # A broker of its own without authentication: no login.
    settings = router_settings.model_copy(
        update={"kafka_bootstrap_servers": kafka.bootstrap, "kafka_username": None, "gateway_kafka_username": None}
    )
    service = create_service(settings, migrate=False)
    await service.wiring.bots_feed.start(30)
    service.view.ready = True
    await service.gateway_broker.start()
    await service.http.start()
    yield service
    await service.http.stop()
    await service.gateway_broker.stop()
    await service.wiring.bots_feed.stop()


async def test_with_the_broker_stopped_the_gateway_answers_503_and_nothing_is_lost_or_half_written(
    kafka, gateway, monkeypatch
):
    bot, secret = new_bot()
    producer = Producer(kafka.bootstrap)
    await producer.producer.start()
    await producer.send(bot)
    await producer.producer.stop()
    await eventually(lambda: _has(gateway, bot), what="bot in the view")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http.port}", timeout=10) as client:
        before = await client.post("/v1/signals", json=signal_body(bot, secret))
        assert before.status_code == 202

        await kafka.stop()
        refused = []
        for _ in range(3):
            started = time.monotonic()
            answer = await client.post("/v1/signals", json=signal_body(bot, secret))
            refused.append((answer.status_code, answer.json()["reason"], time.monotonic() - started))
        assert [(status, reason) for status, reason, _ in refused] == [(503, "broker_unavailable")] * 3
        assert max(seconds for *_, seconds in refused) < 2.0, refused

        await kafka.restart_on_the_same_ports(monkeypatch)
        after = await eventually(
            lambda: _accepted(client, signal_body(bot, secret)),
            timeout=30,
            interval=0.2,
            what="gateway publishing again",
        )

    # Same key, same partition, same producer: anything still held would have gone before `after`.
    ids = [str(signal.signal_id) for signal in await _received(kafka.bootstrap, bot.signal_key)]
    assert ids == [before.json()["signal_id"], after.json()["signal_id"]]


async def _has(service, bot):
    return service.view.get(bot.bot_id) is not None


async def _accepted(client, body):
    answer = await client.post("/v1/signals", json=body)
    return answer if answer.status_code == 202 else None


async def _received(bootstrap: str, signal_key: str) -> list[SignalReceived]:
    consumer = AIOKafkaConsumer(
        SIGNALS_RECEIVED.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found: list[SignalReceived] = []
        while batches := await consumer.getmany(timeout_ms=2000):  # until the topic stays quiet
            for records in batches.values():
                found += [m for r in records if (m := SIGNALS_RECEIVED.decode(r.value)).signal_key == signal_key]
        return sorted(found, key=lambda m: m.occurred_at)
    finally:
        await consumer.stop()
