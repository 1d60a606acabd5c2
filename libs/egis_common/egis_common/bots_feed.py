"""Follows the compacted bots topic: the whole topic at start, then every change.

No consumer group and no committed offsets: every start seeks to the
beginning, so a view of bots is rebuilt whole after a restart. `start`
returns once the records that were on the topic when it began have all been
read, so nothing that depends on the view starts with a partial one.
`caught_up_to_now` does the same later, for a bot created a moment ago.

Each record reaches `on_record` decoded: the bot's id and its latest
snapshot, or None for a tombstone (the bot is gone). The signal router and
the executor both keep a view of bots this way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, cast
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from egis_common.contracts import BotSnapshot
from egis_common.logs import get_logger
from egis_common.topics import BOTS

log = get_logger(__name__)
OnRecord = Callable[[UUID, BotSnapshot | None], None]  # (bot id, snapshot); None = tombstone


def decode(key: bytes | None, value: bytes | None) -> tuple[UUID, BotSnapshot | None]:
    """A record of the bots topic: the bot's id and its snapshot, None for a tombstone.

    Raises on a record off the contract (`pydantic.ValidationError`, or `ValueError` for a key that is no id).
    """
    if value is None:
        return UUID((key or b"").decode()), None  # a tombstone without a key is no id either: ValueError
    snapshot = cast(BotSnapshot, BOTS.decode(value))  # the bots topic carries BotSnapshot alone
    return snapshot.bot_id, snapshot


class BotsFeed:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        on_record: OnRecord,
        *,
        client_id: str,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.on_record = on_record
        self.options = {"bootstrap_servers": bootstrap_servers, "client_id": client_id, **(kafka_options or {})}
        self.consumer: AIOKafkaConsumer | None = None  # aiokafka binds it to the running loop
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, ready_timeout_seconds: float) -> None:
        self.consumer = AIOKafkaConsumer(
            **self.options,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await self.consumer.start()
        # Without a group, a subscription is assigned every partition of the topic.
        self.consumer.subscribe([self.topic])
        await asyncio.wait_for(self._catch_up(self.consumer), ready_timeout_seconds)

    async def caught_up_to_now(self, timeout_seconds: float) -> bool:
        """Wait until every record on the topic now has been handed to `on_record`; False if that takes longer
        than `timeout_seconds` (or the feed has not started)."""
        if self.consumer is None or not self.caught_up.is_set():
            return False
        try:
            async with asyncio.timeout(timeout_seconds):
                end_offsets = await self.consumer.end_offsets(sorted(self.consumer.assignment()))
                while not await self._reached(self.consumer, end_offsets):
                    await asyncio.sleep(0.01)
        except TimeoutError:
            log.warning("bots_feed_catch_up_timed_out", timeout_seconds=timeout_seconds)
            return False
        return True

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        while not consumer.assignment():
            await asyncio.sleep(0.01)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        end_offsets = await consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._follow(consumer, end_offsets), name="bots-feed")
        await self.caught_up.wait()
        log.info("bots_feed_caught_up", partitions=len(partitions), records=sum(end_offsets.values()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await self.consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer, end_offsets: dict[TopicPartition, int]) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200)
            except Exception:  # the client reconnects by itself; keep following
                log.exception("bots_feed_fetch_failed")
                await asyncio.sleep(1)
                continue
            # No await between the fetch and the last record handled: a position a caller sees has been handled.
            for records in batches.values():
                for record in records:
                    self._handle(record)
            if not self.caught_up.is_set() and await self._reached(consumer, end_offsets):
                self.caught_up.set()

    async def _reached(self, consumer: AIOKafkaConsumer, end_offsets: dict[TopicPartition, int]) -> bool:
        # Positions, not offsets seen: compaction leaves gaps, the position steps over them.
        return all([await consumer.position(tp) >= end for tp, end in end_offsets.items()])

    def _handle(self, record: ConsumerRecord) -> None:
        try:
            self.on_record(*decode(record.key, record.value))
        except Exception:  # one unreadable record must not stop the view
            log.exception("bot_record_unreadable", partition=record.partition, offset=record.offset)
