"""The Kafka broker, with every reliability option set explicitly.

- Producer: `acks="all"` with idempotence, so a published message survives a
  broker failover and a retried send is not duplicated.
- Consumer: offsets are committed only after the handler returned, that is
  after its database transaction committed (`AckPolicy.NACK_ON_ERROR`, never
  FastStream's auto-commit default). A handler that raises makes the consumer
  seek back, so the same message comes again. Batch subscribers send that
  commit in the background instead of waiting for it: see `BackgroundCommits`.
- Failures: a transient one (a dependency unavailable) is retried while the
  partition waits and is never dead-lettered; a message that fails
  `max_attempts` times on a healthy system, or that does not parse at all, is
  copied once to the dead-letter topic with its origin and error in headers,
  and then committed, so one bad message never stops a partition. See
  `egis_common.failures`.
- Handlers take their message as `KafkaRecords`, not FastStream's
  `KafkaMessage`: see `KafkaRecords`.
- Batch handlers subscribe through `batch_subscriber`, which never sleeps
  between waits for records and does not wait for its commits: see there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy, BaseMiddleware
from faststream._internal.context import Context  # the class; faststream.Context is a factory function
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from structlog.contextvars import bound_contextvars

from egis_common.failures import DeadLetters
from egis_common.logs import correlation_from_headers, get_logger
from egis_common.metrics import kafka_middleware
from egis_common.settings import EgisSettings

log = get_logger(__name__)


class _ContextInTheLoop(Context):
    """FastStream's `Context`, resolved on the event loop.

    fast_depends calls a custom field's `use` through `run_async`, which runs a plain
    function in a worker thread: with FastStream's own `Context("message")` every
    message a handler takes costs a round trip to a thread and back (and, on a busy
    machine, two waits for a core). An async `use` is awaited where it is.
    """

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)


# The message a handler is given (for a batch subscriber, `raw_message` is its tuple of records).
KafkaRecords = Annotated[KafkaMessage, _ContextInTheLoop("message")]


class _DeadLetterScope(BaseMiddleware):
    """A single-record subscriber's handler, run through `DeadLetters.run` (a batch handler does that itself)."""

    def __init__(self, msg: Any, /, *, context: Any, dead_letters: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self.dead_letters = dead_letters

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        record = msg.raw_message
        if isinstance(record, tuple):  # a batch isolates and dead-letters its own records
            return await call_next(msg)
        with bound_contextvars(**correlation_from_headers(msg.headers)):
            return await self.dead_letters.run(record, lambda: call_next(msg))


def make_broker(settings: EgisSettings, dead_letters: DeadLetters, **options: Any) -> KafkaBroker:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=True,
        middlewares=(kafka_middleware(settings.service_name),
                     functools.partial(_DeadLetterScope, dead_letters=dead_letters)),
        logger=get_logger("faststream"),
        **options,
    )
    return broker


def subscriber_options(group_id: str) -> dict[str, Any]:
    """Options every Egis subscriber passes: commit after the handler, never before."""
    # Records are handled one at a time per subscriber (no batch, one worker):
    # a commit commits every position read so far, so nothing unprocessed may
    # sit in front of it.
    return {
        "group_id": group_id,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
    }


def batch_subscriber_options(group_id: str, max_records: int = 500) -> dict[str, Any]:
    """Like `subscriber_options`, for a handler that takes up to `max_records` records at once.

    The whole batch is committed after the handler returns; see `egis_common.batches`.
    """
    return {**subscriber_options(group_id), "batch": True, "max_records": max_records, "batch_timeout_ms": 20}


# How long one wait for records lasts when none come. getmany returns as soon as records are
# there, so this bounds how often an idle subscriber wakes up, not how long a record waits.
IDLE_WAIT_MS = 500


def batch_subscriber(broker: KafkaBroker, topic: str, group_id: str, max_records: int = 500) -> BatchSubscriber:
    """A batch subscriber (`batch_subscriber_options`) that goes straight back to Kafka after a wait ends
    empty, and does not wait for the commit of the batch it handled before fetching the next.

    FastStream 0.7's batch loop sleeps `batch_timeout_ms` after every empty `getmany`, and a record
    that arrives meanwhile waits out the sleep: up to 20 ms more per crossing on an idle pipeline.
    Its loop calls the subscriber's `get_msg`, which this one replaces with `_next_batch`; the
    batch's commit goes through `BackgroundCommits`, whose last commit `stop` waits for.
    """
    subscriber = broker.subscriber(topic, **batch_subscriber_options(group_id, max_records))
    subscriber.get_msg = functools.partial(_next_batch, max_records=max_records)  # shadows the method
    stop = subscriber.stop

    async def stop_after_the_last_commit() -> None:
        if subscriber.consumer is not None and (commits := _COMMITS.get(subscriber.consumer)) is not None:
            await commits.close()
        await stop()

    subscriber.stop = stop_after_the_last_commit  # shadows the method
    return subscriber


async def _next_batch(consumer: AIOKafkaConsumer, *, max_records: int) -> tuple[Any, ...]:
    """The records already fetched, or the first to arrive within IDLE_WAIT_MS; () after an idle wait."""
    commits = _COMMITS.get(consumer) or BackgroundCommits(consumer)
    batches = await consumer.getmany(timeout_ms=IDLE_WAIT_MS, max_records=max_records)
    records = tuple(chain.from_iterable(batches.values()))
    commits.fetched(records)
    return records


# A batch subscriber commits at most once per interval; the first commit after a quiet spell goes at once.
COMMIT_INTERVAL_SECONDS = 1.0
STOP_COMMIT_TIMEOUT_SECONDS = 10.0
_COMMITS: weakref.WeakKeyDictionary[AIOKafkaConsumer, BackgroundCommits] = weakref.WeakKeyDictionary()


class BackgroundCommits:
    """A batch subscriber's offset commits, sent in the background, at most one per interval.

    FastStream acks a batch once its handler has returned (after the handler's database commit)
    by awaiting `consumer.commit()`: a round trip to the group coordinator before the next fetch,
    for every batch. Where batches hold one record (20 intents/s) that is a commit per record, in
    every consumer of the pipeline.

    Here the ack only hands over the offsets just past the batch it acknowledges (the batch
    `_next_batch` fetched last: FastStream's loop handles one batch at a time), and one task
    commits them: the first at once, then at most one commit per COMMIT_INTERVAL_SECONDS, each
    with the newest handled offset of every partition. What a commit covers does not change: only
    records whose handler has returned (a batch that fails is not acked, and the seek back is
    FastStream's, as before). A commit that is lost or late (the process dies first, or it fails)
    only means those records come again, at most an interval's worth, and every handler's inbox
    makes them no-ops: the same as a crash between a handler's database commit and its offset
    commit. Consumer-lag figures read from the committed offsets lag by up to the interval.
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self._commit = consumer.commit
        self._last_fetched: dict[TopicPartition, int] = {}
        self._handled: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        consumer.commit = self.commit  # what FastStream's ack calls; shadows the method
        _COMMITS[consumer] = self

    def fetched(self, records: Sequence[Any]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        self._last_fetched = offsets

    async def commit(self, offsets: dict[TopicPartition, Any] | None = None) -> None:
        """FastStream's ack of the last batch fetched: its offsets are committed in the background."""
        if offsets is not None or self._stopping.is_set():  # an explicit commit, or stopping: at once, as aiokafka's
            await self._commit(offsets)
            return
        for partition, offset in self._last_fetched.items():
            self._handled[partition] = max(self._handled.get(partition, 0), offset)
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
                    await self._commit(offsets)
            except Exception as error:  # those records come again after a rebalance or restart; inboxes drop them
                log.warning("offset_commit_failed", offsets={f"{p.topic}/{p.partition}": o for p, o in offsets.items()},
                            error=repr(error))
            with contextlib.suppress(TimeoutError):  # what is acked meanwhile goes in the next commit
                async with asyncio.timeout(COMMIT_INTERVAL_SECONDS):
                    await self._stopping.wait()

    async def close(self) -> None:
        """Commit what was handed over so far without waiting out the interval; from now on, each ack at once.

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
            log.warning("offset_commit_abandoned_at_stop", topics=sorted(self.consumer.subscription()),
                        waited_seconds=STOP_COMMIT_TIMEOUT_SECONDS)
