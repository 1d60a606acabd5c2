"""Egis's batch subscriber: its own loop over a Kafka consumer, with offset commits in the background.

FastStream 0.7's batch subscriber sleeps `batch_timeout_ms` after every wait for records that ends
empty (a record that arrives meanwhile waits the sleep out), and awaits each batch's offset commit, a
round trip to the group coordinator, before it fetches the next batch. Its public API changes
neither, so Egis runs the loop itself, on the consumer of a FastStream subscriber that has no handler
(see `egis_common.broker.batch_subscriber`): FastStream creates the topic, builds, subscribes, starts
and stops that consumer and logs its rebalances; it never reads from it, as a subscriber without a
handler only serves explicit `get_one` calls.

What the loop keeps from FastStream's: one batch in flight; a batch whose handler raises is not
committed and its partitions seek back to it, so it comes again; the handler's metrics
(FastStream's Prometheus middleware, run around each batch) and the "Received" / "Processed" /
error log lines, with the same context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError, UnsupportedCodecError
from faststream.kafka.message import KafkaAckableMessage

from egis_common.logs import get_logger

log = get_logger(__name__)
# FastStream's own consume lines go to this logger (make_broker hands it to the broker).
framework_log = get_logger("faststream")

BatchHandler = Callable[[KafkaAckableMessage], Awaitable[Any]]
# A broker middleware factory, as FastStream takes them: called with the raw message and `context=`.
MiddlewareFactory = Callable[..., Any]

# How long one wait for records lasts when none come. getmany returns as soon as records are there,
# so this bounds how often an idle subscriber wakes up, not how long a record waits.
IDLE_WAIT_MS = 500
# How long a stop waits for the batch being handled (FastStream's graceful_timeout default).
GRACEFUL_STOP_SECONDS = 15.0
# Pauses after the consumer failed to fetch (FastStream's).
KAFKA_ERROR_PAUSE_SECONDS = 5.0
CODEC_ERROR_PAUSE_SECONDS = 15.0
# A batch subscriber commits at most once per interval; the first commit after a quiet spell goes at once.
COMMIT_INTERVAL_SECONDS = 1.0
STOP_COMMIT_TIMEOUT_SECONDS = 10.0


class BatchSubscriber:
    """Fetches up to `max_records` records at once and hands them to its one handler as a KafkaMessage
    whose `raw_message` is the tuple of records; commits them in the background once it has returned."""

    def __init__(
        self,
        carrier: Any,
        group_id: str,
        max_records: int,
        *,
        middlewares: Sequence[MiddlewareFactory] = (),
        context: Any = None,
    ) -> None:
        self.carrier = carrier  # the FastStream subscriber that owns the consumer
        self.group_id = group_id
        self.max_records = max_records
        self.handler: BatchHandler | None = None
        self._middlewares = tuple(middlewares)
        self._context = context
        self._task: asyncio.Task[None] | None = None
        self._commits: BackgroundCommits | None = None
        self._running = False
        self._handling = False

    def __call__(self, handler: BatchHandler) -> BatchHandler:
        if self.handler is not None:
            raise ValueError(f"{self.carrier.topic_names} already has a handler")
        self.handler = handler
        return handler

    async def start(self) -> None:
        """Start fetching from the carrier's consumer, which the broker has just started."""
        if self.handler is None or self._task is not None:
            return
        consumer = self.carrier.consumer
        self._commits = BackgroundCommits(consumer)
        self._running = True
        self._task = asyncio.create_task(self._run(consumer), name=f"egis-batches:{self.group_id}")

    async def stop(self) -> None:
        """Let the batch in hand finish (bounded), then send what was handled before the consumer stops."""
        task, self._task = self._task, None
        if task is None:
            return
        self._running = False
        if not self._handling:
            task.cancel()  # waiting for records: nothing to finish
        _done, pending = await asyncio.wait([task], timeout=GRACEFUL_STOP_SECONDS)
        if pending:
            task.cancel()  # the records come again: nothing of them was committed
            await asyncio.wait([task], timeout=1.0)
        if self._commits is not None:
            await self._commits.close()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while self._running:
            try:
                records = await self._fetch(consumer)
            except ConsumerStoppedError:
                return
            except UnsupportedCodecError as error:
                framework_log.log(
                    logging.ERROR,
                    "There is no suitable compression library available",
                    exc_info=error,
                    extra=self._log_context(None),
                )
                await asyncio.sleep(CODEC_ERROR_PAUSE_SECONDS)
                continue
            except KafkaError as error:
                framework_log.log(logging.ERROR, "Kafka error occurred", exc_info=error, extra=self._log_context(None))
                await asyncio.sleep(KAFKA_ERROR_PAUSE_SECONDS)
                continue
            except Exception:  # the loop outlives any one failure, as FastStream's restarts its task
                log.exception("batch_fetch_failed", **self._log_context(None))
                await asyncio.sleep(KAFKA_ERROR_PAUSE_SECONDS)
                continue
            if records:
                self._handling = True
                try:
                    await self._consume(consumer, records)
                finally:
                    self._handling = False

    async def _fetch(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        """The records already fetched, or the first to arrive within IDLE_WAIT_MS; () after an idle wait."""
        batches = await consumer.getmany(timeout_ms=IDLE_WAIT_MS, max_records=self.max_records)
        return tuple(chain.from_iterable(batches.values()))

    async def _consume(self, consumer: AIOKafkaConsumer, records: tuple[ConsumerRecord, ...]) -> None:
        message = batch_message(records, consumer)
        context = self._log_context(message)
        framework_log.log(logging.INFO, "Received", extra=context)
        try:
            await self._handle(message)
        except Exception as error:  # the batch comes again; the handler decided what is transient or poison
            framework_log.log(logging.ERROR, f"{type(error).__name__}: {error}", exc_info=error, extra=context)
            framework_log.log(logging.INFO, "Processed", extra=context)
            await self._seek_back(message)
            return
        framework_log.log(logging.INFO, "Processed", extra=context)
        assert self._commits is not None
        self._commits.handled(records)

    async def _handle(self, message: KafkaAckableMessage) -> None:
        assert self.handler is not None
        handler = self.handler

        async def handled(msg: KafkaAckableMessage) -> Any:
            return await handler(msg)

        call: Callable[[KafkaAckableMessage], Awaitable[Any]] = handled
        for factory in reversed(self._middlewares):  # the first one listed runs outermost
            call = _wrapped(factory, message, call, self._context)
        await call(message)

    async def _seek_back(self, message: KafkaAckableMessage) -> None:
        """Each partition of the batch back to its first record, as FastStream's NACK_ON_ERROR does."""
        try:
            await message.nack()
        except Exception as error:  # a partition taken away meanwhile: its new owner starts from the commit
            framework_log.log(logging.CRITICAL, repr(error), exc_info=error)

    def _log_context(self, message: KafkaAckableMessage | None) -> dict[str, str]:
        if message is None:
            topic = ",".join(self.carrier.topic_names)
        else:
            topic = message.raw_message[0].topic
        return {"topic": topic, "group_id": self.group_id, "message_id": getattr(message, "message_id", "")}


def _wrapped(
    factory: MiddlewareFactory,
    message: KafkaAckableMessage,
    call_next: Callable[[KafkaAckableMessage], Awaitable[Any]],
    context: Any,
) -> Callable[[KafkaAckableMessage], Awaitable[Any]]:
    async def call(msg: KafkaAckableMessage) -> Any:
        middleware = factory(message.raw_message, context=context)
        async with middleware:
            return await middleware.consume_scope(call_next, msg)

    return call


def batch_message(records: tuple[ConsumerRecord, ...], consumer: AIOKafkaConsumer) -> KafkaAckableMessage:
    """A batch as FastStream's batch parser presents it: raw_message is the records, body their values."""
    first, last = records[0], records[-1]
    headers = {key: value.decode() for key, value in first.headers}
    return KafkaAckableMessage(
        body=[record.value or b"" for record in records],
        headers=headers,
        reply_to=headers.get("reply_to", ""),
        content_type=headers.get("content-type"),
        message_id=f"{first.offset}-{last.offset}-{first.timestamp}",
        correlation_id=headers.get("correlation_id"),
        raw_message=records,
        consumer=consumer,
    )


class BackgroundCommits:
    """A batch subscriber's offset commits, sent in the background, at most one per interval.

    Awaiting each batch's commit before fetching the next costs a round trip to the group coordinator
    per batch; where batches hold one record that is a commit per record, in every consumer of the
    pipeline. Here a handled batch only hands over the offsets just past its records, and one task
    commits them: the first at once, then at most one commit per COMMIT_INTERVAL_SECONDS, each with the
    newest handled offset of every partition. What a commit covers does not change: only records whose
    handler has returned (a batch that fails is not handed over). A commit that is lost or late (the
    process dies first, or it fails) only means those records come again, at most an interval's worth,
    and every handler's inbox makes them no-ops: the same as a crash between a handler's database
    commit and its offset commit. Consumer-lag figures read from the committed offsets lag by up to the
    interval.
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self._handled: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def handled(self, records: Sequence[ConsumerRecord]) -> None:
        """These records' handler has returned: commit past them."""
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            self._handled[partition] = max(self._handled.get(partition, 0), record.offset + 1)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._handled:
            offsets, self._handled = self._handled, {}
            # A partition taken away by a rebalance is committed by its new owner.
            assigned = self.consumer.assignment()
            offsets = {partition: offset for partition, offset in offsets.items() if partition in assigned}
            try:
                if offsets:
                    await self.consumer.commit(offsets)
            except Exception as error:  # those records come again after a rebalance or restart; inboxes drop them
                log.warning(
                    "offset_commit_failed",
                    offsets={f"{p.topic}/{p.partition}": o for p, o in offsets.items()},
                    error=repr(error),
                )
            with contextlib.suppress(TimeoutError):  # what is handled meanwhile goes in the next commit
                async with asyncio.timeout(COMMIT_INTERVAL_SECONDS):
                    await self._stopping.wait()

    async def close(self) -> None:
        """Commit what was handed over so far without waiting out the interval.

        aiokafka retries a commit for as long as its error is retriable (no coordinator, a topic gone),
        so a stop waits for it only STOP_COMMIT_TIMEOUT_SECONDS: the records it covered come again.
        """
        self._stopping.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(STOP_COMMIT_TIMEOUT_SECONDS):
                await self._task
        except TimeoutError:
            log.warning(
                "offset_commit_abandoned_at_stop",
                topics=sorted(self.consumer.subscription()),
                waited_seconds=STOP_COMMIT_TIMEOUT_SECONDS,
            )
