"""A stand-in for the ledger (`--executor-only`): every ReserveBudget is answered BudgetReserved at once.

It keeps no budget and no positions; it exists so that the executor's own
throughput can be measured without the ledger's cost on the same cores.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from egis_common import contracts as c
from egis_common.topics import LEDGER_COMMANDS, LEDGER_EVENTS, encode


class StandInLedger:
    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        partitions = [TopicPartition(LEDGER_COMMANDS.name, p) for p in range(LEDGER_COMMANDS.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self.consumer.position(partition)
        self.task = asyncio.create_task(self._answer())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()
        await self.producer.stop()

    async def _answer(self) -> None:
        while True:
            for records in (await self.consumer.getmany(timeout_ms=100, max_records=2000)).values():
                for record in records:
                    command = json.loads(record.value)
                    if command["type"] == "ReserveBudget":
                        answer = _reserved(command)
                        await self.producer.send(LEDGER_EVENTS.name, encode(answer), key=record.key)


def _reserved(command: dict) -> c.BudgetReserved:
    return c.BudgetReserved(
        intent_id=command["intent_id"],
        bot_id=command["bot_id"],
        position_id=uuid.uuid4(),
        intent=command["intent"],
        side=command["side"],
        symbol=command["symbol"],
        reserved_usd=Decimal(command["requested_size_usd"] or "0"),
    )
