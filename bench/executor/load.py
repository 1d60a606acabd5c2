"""The load: signals or intents for 1,000 bots, each timed until its end event.

Latency runs from each one's scheduled send (open loop: a stalled system
shows up as latency, not as a lower rate); each stage is timed from the Kafka
record timestamps of the messages between the intent and its end.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from system import Bot, Infra, Service

from egis_common import contracts as c
from egis_common.topics import EXECUTIONS, INTENTS, LEDGER_COMMANDS, LEDGER_EVENTS, encode

STAGES = ("OrderIntent", "ReserveBudget", "BudgetReserved", "OrderFilled", "PositionOpened")
TOPIC_OF = {
    "OrderIntent": INTENTS,
    "ReserveBudget": LEDGER_COMMANDS,
    "BudgetReserved": LEDGER_EVENTS,
    "OrderFilled": EXECUTIONS,
    "PositionOpened": LEDGER_EVENTS,
}


@dataclass(frozen=True)
class Planned:
    intent_id: uuid.UUID
    bot_id: uuid.UUID
    symbol: str
    payload: Any  # what the sender sends: an OrderIntent, or a webhook body


class Sender(Protocol):
    def plan(self, bot: Bot, symbol: str) -> Planned: ...

    async def send(self, planned: Planned) -> None: ...

    async def settle(self) -> dict: ...

    def not_sent(self) -> set[uuid.UUID]: ...


class IntentSender:
    """Publishes `OrderIntent`s to egis.router.intents.v1, as the router would."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    def plan(self, bot: Bot, symbol: str) -> Planned:
        intent = c.OrderIntent(
            intent_id=uuid.uuid4(),
            signal_id=uuid.uuid4(),
            bot_id=bot.bot_id,
            intent=c.IntentKind.OPEN,
            side=c.Side.LONG,
            symbol=symbol,
            requested_size_usd=Decimal("10"),
            exchange=c.ExchangeName.PAPER,
            exchange_account=bot.account,
        )
        return Planned(intent.intent_id, bot.bot_id, symbol, intent)

    async def send(self, planned: Planned) -> None:
        await self.producer.send(INTENTS.name, encode(planned.payload), key=str(planned.bot_id).encode())

    async def settle(self) -> dict:
        await self.producer.flush()
        return {}

    def not_sent(self) -> set[uuid.UUID]:
        return set()


class Load:
    """Each (bot, symbol) pair used once; `symbols(round)` names the symbol of each round over the bots."""

    def __init__(
        self, bootstrap: str, bots: list[Bot], services: list[Service | Infra], symbols, end: str, stages: bool = False
    ) -> None:
        self.bots, self.services, self.symbols, self.end, self.round = bots, services, symbols, end, 0
        # Watching every stage costs this process (which shares the cores) a consumer of four topics.
        self.stages = STAGES[: STAGES.index(end) + 1] if stages else (end,)
        self.wanted = tuple(f'"type":"{stage}"'.encode() for stage in self.stages)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.sender: Sender = IntentSender(self.producer)

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        watched = {TOPIC_OF[stage] for stage in self.stages}
        partitions = [TopicPartition(t.name, p) for t in watched for p in range(t.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self.consumer.position(partition)

    async def stop(self) -> None:
        await self.producer.stop()
        await self.consumer.stop()

    def planned(self, count: int) -> list[Planned]:
        made = [
            self.sender.plan(self.bots[i % len(self.bots)], self.symbols(self.round + i // len(self.bots)))
            for i in range(count)
        ]
        self.round += -(-count // len(self.bots))
        return made

    async def run(self, planned: list[Planned], rate: float | None) -> dict:
        """Send at `rate` per second (None: as fast as possible); wait for every end event."""
        run = Run({(str(p.bot_id), p.symbol): str(p.intent_id) for p in planned}, self.stages)
        watcher = asyncio.create_task(self._watch(run))
        cpu = {s.name: s.cpu_seconds() for s in self.services}
        cpu["load generator"], machine = time.process_time(), machine_times()
        run.started = time.time()
        for i, item in enumerate(planned):
            scheduled = run.started + i / rate if rate else time.time()
            if rate and (pause := scheduled - time.time()) > 0:
                await asyncio.sleep(pause)
            run.times[str(item.intent_id)] = {"sent": scheduled}
            await self.sender.send(item)
        sending = await self.sender.settle()
        run.forget(self.sender.not_sent())
        run.sent = time.time()
        await watcher
        result = {**run.summary(rate), **sending}
        used = {s.name: s.cpu_seconds() - cpu[s.name] for s in self.services}
        used["load generator"] = time.process_time() - cpu["load generator"]
        result["cpu_ms_per_intent"] = {name: round(1000 * seconds / len(planned), 2) for name, seconds in used.items()}
        # The most the machine's cores allow at these costs, every one of the processes above fully fed.
        result["cores_allow_per_second"] = round(os.cpu_count() * len(planned) / sum(used.values()))
        busy, total = (now - then for now, then in zip(machine_times(), machine, strict=True))
        result["machine_busy_pct"] = round(100 * busy / total)  # every core, everything on it (Kafka, Postgres, ...)
        return result

    async def _watch(self, run: Run) -> None:
        last = time.time()
        while len(run.latencies) < len(run.intent_of):
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.time()
            if not batches and now - last > 60:
                raise SystemExit(f"only {len(run.latencies)} of {len(run.intent_of)} reached {self.end}; stalled 60 s")
            for records in batches.values():
                last = now
                for record in records:
                    if any(wanted in record.value for wanted in self.wanted):  # json.loads only what is timed
                        run.seen(json.loads(record.value), record.timestamp / 1000, now)
        run.finished = time.time()


def machine_times() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    ticks = [int(t) for t in open("/proc/stat").readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


class Run:
    """One load run: when each intent was sent, when each stage's message was produced, when it ended."""

    def __init__(self, intent_of: dict[tuple[str, str], str], stages: tuple[str, ...]) -> None:
        self.intent_of, self.stages = intent_of, stages
        self.times: dict[str, dict[str, float]] = {}
        self.latencies: list[float] = []
        self.started = self.sent = self.finished = 0.0

    def forget(self, intent_ids: set[uuid.UUID]) -> None:
        """Signals the gateway refused are not waited for (the answers say how many)."""
        refused = {str(i) for i in intent_ids}
        self.intent_of = {pair: i for pair, i in self.intent_of.items() if i not in refused}
        for intent_id in refused:
            self.times.pop(intent_id, None)

    def seen(self, message: dict, produced_at: float, now: float) -> None:
        if message["type"] not in self.stages:
            return
        intent_id = message.get("intent_id") or self.intent_of.get((message["bot_id"], message.get("symbol")))
        times = self.times.get(intent_id)
        if times is None or message["type"] in times:
            return
        times[message["type"]] = produced_at
        if message["type"] == self.stages[-1]:
            self.latencies.append(now - times["sent"])

    def summary(self, rate: float | None) -> dict:
        pick = lambda values, q: round(sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000, 1)  # noqa: E731
        stages, previous = {}, "sent"
        for stage in self.stages:  # median time from the previous message to this one, from Kafka record timestamps
            stages[f"{previous}->{stage}_p50_ms"] = pick([t[stage] - t[previous] for t in self.times.values()], 0.5)
            previous = stage
        return {
            "intents": len(self.intent_of),
            "target_rate": rate or "as fast as possible",
            "send_seconds": round(self.sent - self.started, 2),
            "seconds": round(self.finished - self.started, 2),
            f"{self.stages[-1]}_per_second": round(len(self.intent_of) / (self.finished - self.started)),
            "latency_p50_ms": pick(self.latencies, 0.5),
            "latency_p99_ms": pick(self.latencies, 0.99),
            "latency_max_ms": pick(self.latencies, 1.0),
            "stages": stages,
        }
