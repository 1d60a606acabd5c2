"""Benchmark: what Kafka alone costs, with no Egis code in it.

The pipeline benchmark's intent crosses Kafka five times (intent, ReserveBudget,
BudgetReserved, OrderFilled, PositionOpened). By default this measures one such
hop alone: a producer configured as the outbox relay's (acks=all, idempotent,
no linger) sends 300-byte records over a 6-partition topic at a fixed rate, and
a consumer configured as the services' (batches of up to 500, commit after each
batch) reads them. (The services' batch subscribers commit at most once a second, in the
background: `egis_common.subscriber.BackgroundCommits`. This floor still commits every batch,
so it overstates Kafka's share a little where batches are small.) It reports the broker's
and this process's CPU, and the latency from each send to its receipt (p50/p99), after a
warm-up that lets the broker's JIT settle (its first minute costs more CPU than later).

With `--pipeline` the records cross Kafka five times, in the pipeline's shape and
nothing else: two forwarding processes stand for the executor and the ledger,
each consuming two of the topics (its own group per topic, as the services do)
and sending each batch on to the next topic, waiting for the acknowledgements,
then committing the batch; the load generator lingers 2 ms, as `load.py`'s does.
No database, no decoding: the floor under the pipeline's CPU and latency on the same machine.

With `--client confluent` every client (forwarders and load generator) is
confluent-kafka (librdkafka, C) instead of aiokafka (pure Python), configured
alike, to show how much of the floor is the client library. It is not a project
dependency; run it with `uv run --with confluent-kafka`. Each forwarding loop runs
in a thread of its own with a producer of its own (a librdkafka flush waits for
every record of its producer).

    uv run python bench/executor/kafka_floor.py [--rate 200] [--seconds 20] [--warm-up 60] [--pipeline]
    uv run --with confluent-kafka python bench/executor/kafka_floor.py --pipeline --client confluent
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from egis_localinfra.kafka import start_kafka, stop_kafka

sys.path.insert(0, str(Path(__file__).parent))
from system import cpu_seconds  # noqa: E402

TOPIC, PARTITIONS, SIZE = "egis.bench.kafka-floor.v1", 6, 300
# The pipeline's five crossings, and which stand-in forwards each one to the next.
CHAIN = [
    f"egis.bench.kafka-floor.{stage}.v1"
    for stage in ("intents", "ledger-commands", "ledger-events", "executions", "positions")
]
FORWARDERS = {
    "executor": [(CHAIN[0], CHAIN[1]), (CHAIN[2], CHAIN[3])],
    "ledger": [(CHAIN[1], CHAIN[2]), (CHAIN[3], CHAIN[4])],
}


RELAY_LINGER_MS = 0  # egis_common.outbox.OutboxRelay's
GENERATOR_LINGER_MS = 2  # load.py's


def relay_producer(bootstrap: str, linger_ms: int = RELAY_LINGER_MS) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms)


def service_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )


async def forward(bootstrap: str, pairs: list[tuple[str, str]]) -> None:
    """A stand-in service: every batch of each source topic goes on to its next topic, then is committed."""
    producer = relay_producer(bootstrap)
    await producer.start()

    async def one(source: str, target: str) -> None:
        consumer = service_consumer(bootstrap, source, f"kafka-floor.{source}")
        await consumer.start()
        while True:
            batches = await consumer.getmany(timeout_ms=20, max_records=500)
            sent = [
                await producer.send(target, record.value, key=record.key)
                for records in batches.values()
                for record in records
            ]
            if sent:
                await asyncio.gather(*sent)
                await consumer.commit()

    await asyncio.gather(*(one(source, target) for source, target in pairs))


def run_forwarder(bootstrap: str, pairs: list[tuple[str, str]]) -> None:
    asyncio.run(forward(bootstrap, pairs))


# ---------------------------------------------------------------- confluent-kafka (librdkafka)


def rd_producer(bootstrap: str, linger_ms: int = RELAY_LINGER_MS):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": linger_ms})


def rd_consumer(bootstrap: str, topic: str, group: str):
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    return consumer


def rd_batch(consumer) -> list:
    """What has arrived, up to 500 records, as soon as there is one (consume(500, t) would wait out t)."""
    first = consumer.poll(0.02)
    records = [] if first is None else [first, *consumer.consume(499, 0)]
    for record in records:
        if record.error() is not None:
            raise RuntimeError(f"kafka consumer error: {record.error()}")
    return records


def rd_forward_one(bootstrap: str, source: str, target: str) -> None:
    producer, consumer = rd_producer(bootstrap), rd_consumer(bootstrap, source, f"kafka-floor.{source}")
    while True:
        if records := rd_batch(consumer):
            for record in records:
                producer.produce(target, record.value(), key=record.key())
            if producer.flush(30) != 0:
                raise RuntimeError("records not acknowledged within 30 s")
            consumer.commit(asynchronous=False)


def run_rd_forwarder(bootstrap: str, pairs: list[tuple[str, str]]) -> None:
    threads = [threading.Thread(target=rd_forward_one, args=(bootstrap, *pair), daemon=True) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class RdGenerator:
    """The load generator's two ends on librdkafka: a sending thread and a reading thread."""

    def __init__(self, bootstrap: str, first: str, last: str, latencies: list[float], linger_ms: int) -> None:
        self.producer, self.first = rd_producer(bootstrap, linger_ms), first
        self.consumer, self.latencies, self.stopped = rd_consumer(bootstrap, last, "kafka-floor"), latencies, False

    def read(self) -> None:
        while not self.stopped:
            records = rd_batch(self.consumer)
            now = time.time()
            self.latencies.extend(now - struct.unpack("d", record.value()[:8])[0] for record in records)
            if records:
                self.consumer.commit(asynchronous=False)
        self.consumer.close()

    def send_for(self, rate: float, duration: float) -> int:
        started, sent = time.time(), 0
        while (scheduled := started + sent / rate) < started + duration:
            if (pause := scheduled - time.time()) > 0:
                time.sleep(pause)
            self.producer.produce(self.first, struct.pack("d", scheduled) + b"x" * (SIZE - 8), key=str(sent).encode())
            self.producer.poll(0)
            sent += 1
        return sent


async def hop(
    bootstrap: str,
    broker_pid: int,
    rate: float,
    seconds: float,
    warm_up: float,
    pipeline: bool = False,
    client: str = "aiokafka",
) -> dict:
    first, last = (CHAIN[0], CHAIN[-1]) if pipeline else (TOPIC, TOPIC)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1) for topic in (CHAIN if pipeline else [TOPIC])])
    await admin.close()
    forwarders = {}
    if pipeline:
        spawn = multiprocessing.get_context("spawn")
        target = run_rd_forwarder if client == "confluent" else run_forwarder
        for name, pairs in FORWARDERS.items():
            forwarders[name] = spawn.Process(target=target, args=(bootstrap, pairs), daemon=True)
            forwarders[name].start()
    latencies: list[float] = []
    linger_ms = GENERATOR_LINGER_MS if pipeline else RELAY_LINGER_MS  # alone, the sender stands for a relay
    if client == "confluent":
        generator = RdGenerator(bootstrap, first, last, latencies, linger_ms)
        reader = asyncio.create_task(asyncio.to_thread(generator.read))

        async def send_for(duration: float) -> int:
            return await asyncio.to_thread(generator.send_for, rate, duration)

        async def close() -> None:
            generator.stopped = True
            await reader
            generator.producer.flush(10)
    else:
        producer = relay_producer(bootstrap, linger_ms)
        consumer = service_consumer(bootstrap, last, "kafka-floor")
        await producer.start()
        await consumer.start()

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
                await producer.send(first, struct.pack("d", scheduled) + b"x" * (SIZE - 8), key=str(sent).encode())
                sent += 1
            return sent

        reader = asyncio.create_task(consume())

        async def close() -> None:
            reader.cancel()
            await consumer.stop()
            await producer.stop()

    try:
        await send_for(warm_up)
        await asyncio.sleep(1)
        latencies.clear()
        pids = {name: process.pid for name, process in forwarders.items()}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        broker, client_cpu, started = cpu_seconds(broker_pid), time.process_time(), time.time()
        sent = await send_for(seconds)
        elapsed = time.time() - started
        broker, client_cpu = cpu_seconds(broker_pid) - broker, time.process_time() - client_cpu
        stand_ins = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        deadline = time.time() + 10
        while len(latencies) < sent and time.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await close()
        for process in forwarders.values():
            process.terminate()
            process.join(5)
    ordered = sorted(latencies)
    pick = lambda q: round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    result = {
        "rate": rate,
        "records": sent,
        "received": len(latencies),
        "hops": len(CHAIN) if pipeline else 1,
        "broker_cpu_pct_of_a_core": round(100 * broker / elapsed, 1),
        "client": client,
        "producer_and_consumer_cpu_pct_of_a_core": round(100 * client_cpu / elapsed, 1),
        "broker_cpu_ms_per_record": round(1000 * broker / sent, 3),
        "latency_p50_ms": pick(0.5),
        "latency_p99_ms": pick(0.99),
    }
    if pipeline:
        result["stand_in_cpu_pct_of_a_core"] = {name: round(100 * cpu / elapsed, 1) for name, cpu in stand_ins.items()}
        result["total_cpu_pct_of_a_core"] = round(100 * (broker + client_cpu + sum(stand_ins.values())) / elapsed, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-up", type=float, default=60)
    parser.add_argument("--pipeline", action="store_true", help="five hops in the pipeline's shape (see above)")
    parser.add_argument(
        "--client",
        choices=("aiokafka", "confluent"),
        default="aiokafka",
        help="the Kafka client every process uses (see above)",
    )
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="egis-bench-kafka-"))
    try:
        kafka = start_kafka(state / "kafka", fast_start=False)  # full JIT, as the other benchmarks
        result = asyncio.run(
            hop(kafka.bootstrap, kafka.pid, args.rate, args.seconds, args.warm_up, args.pipeline, args.client)
        )
        result.update(kafka=kafka.version, cores=os.cpu_count())
        print(json.dumps(result, indent=2))
    finally:
        stop_kafka(state / "kafka")
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
