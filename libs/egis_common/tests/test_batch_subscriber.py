"""The batch subscriber's loop against a hand-written consumer.

The real-Kafka tests are in test_messaging_integration."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from egis_common import subscriber as subscriber_module
from egis_common.subscriber import IDLE_WAIT_MS, BatchSubscriber
from egis_localinfra.testing import eventually

TOPIC = "egis.test.batches.v1"
PARTITION = TopicPartition(TOPIC, 0)


class StubConsumer:
    """One partition: a log, a position that getmany advances and seek moves, commits held by `gate`."""

    def __init__(self) -> None:
        self.log: list[ConsumerRecord] = []
        self.position = 0
        self.fetches: list[tuple[int, int]] = []
        self.commits: list[dict[int, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.assigned = {PARTITION}
        self._appended = asyncio.Event()

    def append(self, count: int = 1) -> None:
        for _ in range(count):
            offset = len(self.log)
            self.log.append(
                ConsumerRecord(
                    TOPIC, 0, offset, offset, 0, b"k", b'{"n": %d}' % offset, None, 1, 8, [("signal_id", b"s")]
                )
            )
        self._appended.set()

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        self.fetches.append((timeout_ms, max_records))
        if self.position >= len(self.log):
            self._appended.clear()
            try:
                await asyncio.wait_for(self._appended.wait(), timeout_ms / 1000)
            except TimeoutError:
                return {}
        records = self.log[self.position : self.position + max_records]
        self.position += len(records)
        return {PARTITION: records}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.position = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append({tp.partition: offset for tp, offset in offsets.items()})
        await self.gate.wait()

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def subscription(self) -> set[str]:
        return {TOPIC}


class Carrier:
    topic_names = [TOPIC]

    def __init__(self, consumer: StubConsumer) -> None:
        self.consumer = consumer


@pytest.fixture
def consumer() -> StubConsumer:
    return StubConsumer()


async def started(consumer: StubConsumer, handler, **options) -> BatchSubscriber:
    subscriber = BatchSubscriber(Carrier(consumer), "g", 10, **options)
    subscriber(handler)
    await subscriber.start()
    return subscriber


def recording(handled: list[list[int]]):
    async def handler(msg) -> None:
        handled.append([record.offset for record in msg.raw_message])

    return handler


async def _true_when(value) -> bool:
    return bool(value)


async def test_it_fetches_the_next_batch_while_the_last_ones_commit_is_on_its_way(consumer):
    handled: list[list[int]] = []
    consumer.gate.clear()
    subscriber = await started(consumer, recording(handled))
    consumer.append()
    await eventually(lambda: _true_when(consumer.commits), what="the first batch's commit sent (and held)")
    consumer.append(2)
    await eventually(lambda: _true_when(handled == [[0], [1, 2]]), what="the next batch handled meanwhile")
    consumer.gate.set()
    await eventually(lambda: _true_when(consumer.commits == [{0: 1}, {0: 3}]), what="one commit after the other")
    await subscriber.stop()
    assert {fetch for fetch in consumer.fetches} == {(IDLE_WAIT_MS, 10)}


async def test_a_batch_that_fails_is_not_committed_and_comes_again(consumer):
    handled: list[list[int]] = []

    async def handler(msg) -> None:
        offsets = [record.offset for record in msg.raw_message]
        handled.append(offsets)
        if len(handled) == 2:
            raise RuntimeError("the second batch fails once")

    subscriber = await started(consumer, handler)
    consumer.append()
    await eventually(lambda: _true_when(consumer.commits == [{0: 1}]), what="the first batch committed")
    consumer.append(2)
    await eventually(lambda: _true_when(len(handled) == 3), what="the failed batch handled again")
    await subscriber.stop()
    assert handled == [[0], [1, 2], [1, 2]]
    assert consumer.commits == [{0: 1}, {0: 3}], "nothing past offset 0 until the batch was handled"


async def test_an_idle_subscriber_stops_at_once_and_a_busy_one_commits_its_batch_first(consumer, monkeypatch):
    monkeypatch.setattr(subscriber_module, "COMMIT_INTERVAL_SECONDS", 600.0)
    in_handler, release = asyncio.Event(), asyncio.Event()
    handled: list[list[int]] = []

    async def handler(msg) -> None:
        if msg.raw_message[0].offset == 1:
            in_handler.set()
            await release.wait()
        handled.append([record.offset for record in msg.raw_message])

    subscriber = await started(consumer, handler)
    consumer.append()
    await eventually(lambda: _true_when(consumer.commits), what="the first batch committed at once")
    consumer.append()
    await asyncio.wait_for(in_handler.wait(), 5)
    stopping = asyncio.create_task(subscriber.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done(), "the stop waits for the batch being handled"
    release.set()
    await asyncio.wait_for(stopping, 5)  # not the 600 s interval
    assert handled == [[0], [1]] and consumer.commits == [{0: 1}, {0: 2}]

    idle = await started(StubConsumer(), recording([]))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(idle.stop(), IDLE_WAIT_MS / 1000 / 2)


async def test_a_stop_whose_last_commit_cannot_go_through_is_bounded(consumer, monkeypatch):
    monkeypatch.setattr(subscriber_module, "STOP_COMMIT_TIMEOUT_SECONDS", 0.2)
    consumer.gate.clear()
    subscriber = await started(consumer, recording([]))
    consumer.append()
    await eventually(lambda: _true_when(consumer.commits), what="the commit sent (and held for good)")
    await asyncio.wait_for(subscriber.stop(), 5)


async def test_a_partition_taken_away_is_left_to_its_new_owner(consumer):
    consumer.gate.clear()
    subscriber = await started(consumer, recording([]))
    consumer.append()
    await eventually(lambda: _true_when(consumer.commits), what="the first commit sent (and held)")
    consumer.append()
    await asyncio.sleep(0.05)
    consumer.assigned = set()
    consumer.gate.set()
    await subscriber.stop()
    assert consumer.commits == [{0: 1}]


async def test_each_batch_goes_through_the_brokers_metrics_middleware(consumer):
    registry = CollectorRegistry()
    metrics = KafkaPrometheusMiddleware(registry=registry, app_name="probe")
    subscriber = await started(consumer, recording([]), middlewares=(metrics,))
    consumer.append(3)
    labels = {"app_name": "probe", "broker": "kafka", "handler": TOPIC}

    async def counted() -> bool:
        return registry.get_sample_value("faststream_received_messages_total", labels) == 3

    await eventually(counted, what="three records counted")
    await subscriber.stop()
    processed = registry.get_sample_value("faststream_received_processed_messages_total", {**labels, "status": "acked"})
    assert processed == 3
