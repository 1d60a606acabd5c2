"""Follows the compacted bots topic: the whole topic at start, then every change.

No consumer group and no committed offsets: every start seeks to the
beginning, so the view is rebuilt whole after a restart. `start` returns
once the records that were on the topic when it began have all been read,
so nothing that depends on the view starts with a partial one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from egis_common.logs import get_logger

log = get_logger(__name__)
OnRecord = Callable[[bytes | None, bytes | None], None]  # (key, value); value None = tombstone


class BotsFeed:
    def __init__(self, bootstrap_servers: str, topic: str, on_record: OnRecord, *, client_id: str,
                 kafka_options: Mapping[str, Any] | None = None) -> None:
        self.topic = topic
        self.on_record = on_record
        self.options = {"bootstrap_servers": bootstrap_servers, "client_id": client_id, **(kafka_options or {})}
        self.consumer: AIOKafkaConsumer | None = None  # aiokafka binds it to the running loop
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self, ready_timeout_seconds: float) -> None:
        self.consumer = AIOKafkaConsumer(
            **self.options, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=100,
        )
        await self.consumer.start()
        # Without a group, a subscription is assigned every partition of the topic.
        self.consumer.subscribe([self.topic])
        await asyncio.wait_for(self._catch_up(), ready_timeout_seconds)

    async def _catch_up(self) -> None:
        while not self.consumer.assignment():
            await asyncio.sleep(0.01)
        partitions = sorted(self.consumer.assignment())
        await self.consumer.seek_to_beginning(*partitions)
        end_offsets = await self.consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._follow(end_offsets), name="bots-feed")
        await self.caught_up.wait()
        log.info("bots_feed_caught_up", partitions=len(partitions), records=sum(end_offsets.values()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await self.consumer.stop()

    async def _follow(self, end_offsets: dict[TopicPartition, int]) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=200)
            except Exception:  # the client reconnects by itself; keep following
                log.exception("bots_feed_fetch_failed")
                await asyncio.sleep(1)
                continue
            for records in batches.values():
                for record in records:
                    self._handle(record)
            if not self.caught_up.is_set() and await self._reached(end_offsets):
                self.caught_up.set()

    async def _reached(self, end_offsets: dict[TopicPartition, int]) -> bool:
        # Positions, not offsets seen: compaction leaves gaps, the position steps over them.
        return all([await self.consumer.position(tp) >= end for tp, end in end_offsets.items()])

    def _handle(self, record: ConsumerRecord) -> None:
        try:
            self.on_record(record.key, record.value)
        except Exception:  # one unreadable record must not stop the view
            log.exception("bot_record_unreadable", partition=record.partition, offset=record.offset)
