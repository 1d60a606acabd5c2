"""Benchmark: what one Kafka hop costs on this machine, with no Egis code in it.

The pipeline benchmark's intent crosses Kafka five times (intent, ReserveBudget,
BudgetReserved, OrderFilled, PositionOpened). This measures one such hop alone:
a producer configured as the outbox relay's (acks=all, idempotent, linger 2 ms)
sends 300-byte records over a 6-partition topic at a fixed rate, and a consumer
configured as the services' (batches of up to 500, commit after each batch)
reads them. It reports the broker's and this process's CPU, and the latency from
each send to its receipt (p50/p99), after a warm-up that lets the broker's JIT
settle (its first minute costs up to twice as much CPU).

    uv run python bench/executor/kafka_floor.py [--rate 200] [--seconds 20] [--warm-up 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from egis_localinfra.kafka import start_kafka, stop_kafka

TOPIC, PARTITIONS, SIZE = "egis.bench.kafka-floor.v1", 6, 300


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hop(bootstrap: str, broker_pid: int, rate: float, seconds: float, warm_up: float) -> dict:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="kafka-floor", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    latencies: list[float] = []

    async def consume() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=20, max_records=500)
            now = time.time()
            for records in batches.values():
                latencies.extend(now - struct.unpack("d", record.value[:8])[0] for record in records)
            if batches:
                await consumer.commit()

    async def send_for(duration: float) -> int:
        started, sent = time.time(), 0
        while (scheduled := started + sent / rate) < started + duration:
            if (pause := scheduled - time.time()) > 0:
                await asyncio.sleep(pause)
            await producer.send(TOPIC, struct.pack("d", scheduled) + b"x" * (SIZE - 8), key=str(sent).encode())
            sent += 1
        return sent

    reader = asyncio.create_task(consume())
    try:
        await send_for(warm_up)
        await asyncio.sleep(1)
        latencies.clear()
        broker, client, started = cpu_seconds(broker_pid), time.process_time(), time.time()
        sent = await send_for(seconds)
        elapsed = time.time() - started
        broker, client = cpu_seconds(broker_pid) - broker, time.process_time() - client
        deadline = time.time() + 10
        while len(latencies) < sent and time.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    ordered = sorted(latencies)
    pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {
        "rate": rate, "records": sent, "received": len(latencies),
        "broker_cpu_pct_of_a_core": round(100 * broker / elapsed, 1),
        "producer_and_consumer_cpu_pct_of_a_core": round(100 * client / elapsed, 1),
        "broker_cpu_ms_per_record": round(1000 * broker / sent, 3),
        "latency_p50_ms": pick(0.5), "latency_p99_ms": pick(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-up", type=float, default=60)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="egis-bench-kafka-"))
    try:
        kafka = start_kafka(state / "kafka", fast_start=False)  # full JIT, as the other benchmarks
        result = asyncio.run(hop(kafka.bootstrap, kafka.pid, args.rate, args.seconds, args.warm_up))
        result.update(kafka=kafka.version, cores=os.cpu_count())
        print(json.dumps(result, indent=2))
    finally:
        stop_kafka(state / "kafka")
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
