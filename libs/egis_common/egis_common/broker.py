"""The Kafka broker, with every reliability option set explicitly.

- Producer: `acks="all"` with idempotence, so a published message survives a
  broker failover and a retried send is not duplicated.
- Consumer: offsets are committed only after the handler returned, that is
  after its database transaction committed (`AckPolicy.NACK_ON_ERROR`, never
  FastStream's auto-commit default). A handler that raises makes the consumer
  seek back, so the same message comes again. Batch subscribers send that
  commit in the background instead of waiting for it: see
  `egis_common.subscriber.BackgroundCommits`.
- Failures: a transient one (a dependency unavailable) is retried while the
  partition waits and is never dead-lettered; a message that fails
  `max_attempts` times on a healthy system, or that does not parse at all, is
  copied once to the dead-letter topic with its origin and error in headers,
  and then committed, so one bad message never stops a partition. See
  `egis_common.failures`.
- Batch handlers subscribe through `batch_subscriber`, which never sleeps
  between waits for records and does not wait for its commits: see there.
- Nothing here reaches into FastStream's internals or replaces a method on a
  live object: the batch loop is Egis's own (`egis_common.subscriber`), and
  FastStream is extended only through its public API (a broker subclass that
  starts and stops those loops, middlewares, subscriber options).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Annotated, Any

from faststream import AckPolicy, BaseMiddleware, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.message import StreamMessage
from structlog.contextvars import bound_contextvars

from egis_common.failures import DeadLetters
from egis_common.kafka_login import broker_security
from egis_common.logs import correlation_from_headers, get_logger
from egis_common.metrics import DEAD_LETTERED, kafka_middleware
from egis_common.settings import EgisSettings
from egis_common.subscriber import IDLE_WAIT_MS, BatchSubscriber

__all__ = [
    "IDLE_WAIT_MS",
    "BatchSubscriber",
    "EgisBroker",
    "KafkaRecords",
    "batch_subscriber",
    "batch_subscriber_options",
    "make_broker",
    "subscriber_options",
]

log = get_logger(__name__)

# The message a handler is given (for a batch subscriber, `raw_message` is its tuple of records).
# A batch subscriber calls its handler with it directly; a FastStream subscriber resolves it from its context.
KafkaRecords = Annotated[KafkaMessage, Context("message")]


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


class EgisBroker(KafkaBroker):
    """FastStream's Kafka broker, which also starts and stops Egis's batch subscribers.

    They start after FastStream's subscribers, whose consumers they read, and stop before them, so
    the commits they still send go out on a running consumer. Each topic subscribed starts its dead-letter
    count at 0: a series born at its first dead letter would read no increase.
    """

    def __init__(self, *args: Any, batch_middlewares: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_middlewares = tuple(batch_middlewares)
        self.batch_subscribers: list[BatchSubscriber] = []

    async def start(self) -> None:
        for declared in self.subscribers:
            for topic in getattr(declared, "topic_names", ()):
                DEAD_LETTERED.labels(topic)
        await super().start()
        for subscriber in self.batch_subscribers:
            await subscriber.start()

    async def stop(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        await asyncio.gather(*(subscriber.stop() for subscriber in self.batch_subscribers))
        await super().stop(exc_type, exc_val, exc_tb)


def make_broker(settings: EgisSettings, dead_letters: DeadLetters, **options: Any) -> EgisBroker:
    metrics = kafka_middleware(settings.service_name)
    return EgisBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        security=broker_security(settings),
        acks="all",
        enable_idempotence=True,
        middlewares=(metrics, functools.partial(_DeadLetterScope, dead_letters=dead_letters)),
        batch_middlewares=(metrics,),
        logger=get_logger("faststream"),
        **options,
    )


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


def batch_subscriber(broker: KafkaBroker, topic: str, group_id: str, max_records: int = 500) -> BatchSubscriber:
    """A subscriber for a handler that takes up to `max_records` records at once (`egis_common.subscriber`).

    It goes straight back to Kafka after a wait for records ends empty (FastStream 0.7's batch loop sleeps
    `batch_timeout_ms` then, and a record that arrives meanwhile waits the sleep out), and it commits in the
    background instead of before fetching the next batch. The consumer it reads is that of a FastStream
    subscriber with `batch_subscriber_options` and no handler: FastStream builds, starts and stops it (and
    lists it among the broker's subscribers); the broker, an `EgisBroker`, runs the loop.
    """
    if not isinstance(broker, EgisBroker):
        raise TypeError("batch_subscriber needs the broker make_broker builds (an EgisBroker)")
    carrier = broker.subscriber(topic, **batch_subscriber_options(group_id, max_records))
    subscriber = BatchSubscriber(
        carrier, group_id, max_records, middlewares=broker.batch_middlewares, context=broker.context
    )
    broker.batch_subscribers.append(subscriber)
    return subscriber
