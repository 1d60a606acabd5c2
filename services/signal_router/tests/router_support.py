"""Test helpers: bots, webhook bodies, and a tail of the topics the service writes."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from egis_common.contracts import BotSnapshot, ExchangeName, Message
from egis_common.secrets import hash_token, new_token
from egis_common.topics import BOTS, Topic, encode, key_for


def new_bot(**changes: Any) -> tuple[BotSnapshot, str]:
    """A live bot with a fresh key and secret; returns the snapshot and the secret."""
    secret = new_token("whs_")
    bot = BotSnapshot(
        bot_id=uuid4(),
        version=1,
        owner_id=uuid4(),
        name="test bot",
        signal_key=f"key-{uuid4().hex[:12]}",
        webhook_secret_hash=hash_token(secret),
        exchange=ExchangeName.PAPER,
        exchange_account="paper-1",
        initial_budget_usd=Decimal("1000"),
        default_order_size_usd=Decimal("100"),
        paused=False,
        deleted=False,
    )
    return bot.model_copy(update=changes), secret


def next_version(bot: BotSnapshot, **changes: Any) -> BotSnapshot:
    return bot.model_copy(update={"version": bot.version + 1, **changes})


def signal_body(bot: BotSnapshot, secret: str, **fields: Any) -> dict[str, Any]:
    body = {
        "signal_key": bot.signal_key,
        "secret": secret,
        "action": "buy",
        "symbol": "BTCUSDT",
        "timestamp": datetime.now(UTC).isoformat(),
        "signal_id": uuid4().hex,
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


class Producer:
    """Plays the ledger (bot snapshots) or a raw producer of any registry message."""

    def __init__(self, bootstrap: str, login: dict[str, str] | None = None) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **(login or {})
        )

    async def send(self, message: Message, topic: Topic = BOTS) -> None:
        await self.producer.send_and_wait(topic.name, encode(message), key=key_for(message))

    async def tombstone(self, bot_id: UUID) -> None:
        await self.producer.send_and_wait(BOTS.name, None, key=str(bot_id).encode())


@dataclass
class Tail:
    """Every record appended to some topics after `start`, decoded, in arrival order."""

    bootstrap: str
    topics: tuple[Topic, ...]
    login: dict[str, str] = field(default_factory=dict)  # the test broker's super user
    messages: list[Message] = field(default_factory=list)
    raw_count: int = 0

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **self.login
        )
        await self.consumer.start()
        partitions = [TopicPartition(t.name, p) for t in self.topics for p in range(t.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        by_name = {t.name: t for t in self.topics}
        while True:
            for tp, records in (await self.consumer.getmany(timeout_ms=100)).items():
                self.raw_count += len(records)
                self.messages.extend(by_name[tp.topic].decode(r.value) for r in records)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.consumer.stop()

    def of(self, kind: type[Message], **attributes: Any) -> list[Any]:
        return [
            m
            for m in self.messages
            if isinstance(m, kind) and all(getattr(m, name) == value for name, value in attributes.items())
        ]
