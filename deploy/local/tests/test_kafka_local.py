"""End-to-end check of the local Kafka launcher against a real KRaft broker."""

import asyncio
import os
import shutil

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from egis_localinfra.kafka import kafka_status, start_kafka, stop_kafka

pytestmark = pytest.mark.skipif(not (shutil.which("java") and shutil.which("mvn")), reason="needs java and mvn on PATH")


async def _roundtrip(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("egis.test", num_partitions=3, replication_factor=1)])
        described = await admin.describe_topics(["egis.test"])
        assert len(described[0]["partitions"]) == 3
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait("egis.test", b"hello", key=b"k", partition=2)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "egis.test", bootstrap_servers=bootstrap, group_id="egis-test", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=30)
        assert (msg.key, msg.value, msg.partition) == (b"k", b"hello", 2)
    finally:
        await consumer.stop()


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(180)
def test_kafka_starts_serves_and_stops(tmp_path):
    info = start_kafka(tmp_path)
    try:
        assert kafka_status(tmp_path) == info
        assert start_kafka(tmp_path) == info  # already running: same broker, not a second one
        asyncio.run(_roundtrip(info.bootstrap))
        assert "Kafka version: 4." in info.log_path.read_text()
        assert info.version.startswith("4.")
    finally:
        stop_kafka(tmp_path)
    assert _pid_gone(info.pid)
    assert kafka_status(tmp_path) is None
    stop_kafka(tmp_path)  # stopping again is a no-op
