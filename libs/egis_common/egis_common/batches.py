"""Consume a batch of records, isolating any record that fails.

`consume_batch` is the one rule for failures: the handler gets the whole batch
first. While it fails for a transient reason (a dependency unavailable) the
whole batch is tried again after a backoff, and the partition waits. If it
fails otherwise, each record is tried alone, so one bad record cannot hold
back the others: a record that does not parse, or that fails `max_attempts`
times on a healthy system, goes to the dead-letter topic once and the batch
moves on (see `egis_common.failures`). Whatever was already done is a no-op
when records come again (inbox, idempotent handlers).

`process_batch` is the common case on top of it: the claimed messages handled
in ONE transaction (one commit, one offset commit for the whole batch).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from structlog.contextvars import bound_contextvars

from egis_common.contracts import Message
from egis_common.failures import DeadLetters
from egis_common.logs import correlation_from_headers, get_logger, ids_of
from egis_common.outbox import Inbox, UnitOfWork
from egis_common.topics import Topic

R = TypeVar("R")
BatchHandler = Callable[[list[Message]], Awaitable[list[R]]]
log = get_logger(__name__)


async def consume_batch(
    records: Sequence[Any], topic: Topic, dead_letters: DeadLetters, handle: BatchHandler[R]
) -> list[R]:
    decoded = [(record, message) for record in records if (message := await _decode(record, topic, dead_letters))]
    if len(decoded) > 1:
        messages = [message for _, message in decoded]
        try:
            return await dead_letters.retry_transient(topic.name, lambda: handle(messages))
        except Exception as error:
            if await dead_letters.transient(error):
                raise  # held as long as allowed: the consumer seeks back and the batch comes again
            log.warning("batch_failed_isolating_records", topic=topic.name, records=len(decoded), error=repr(error))
    results: list[R] = []
    for record, message in decoded:
        # Alone, the record's own ids are in scope: every line about it (a failure, a dead letter) names them.
        headers = dict(getattr(record, "headers", None) or ())  # a Kafka record's headers: (key, bytes) pairs
        with bound_contextvars(**{**correlation_from_headers(headers), **ids_of(message)}):
            results.extend(await dead_letters.run(record, functools.partial(handle, [message])) or [])
    return results


async def process_batch(
    records: Sequence[Any],
    topic: Topic,
    uow: UnitOfWork,
    inbox: Inbox,
    dead_letters: DeadLetters,
    handle: Callable[[AsyncConnection, list[Message]], Awaitable[list[R]]],
) -> list[R]:
    async def in_one_transaction(messages: list[Message]) -> list[R]:
        unique = list({message.message_id: message for message in messages}.values())
        async with uow.begin() as conn:
            claimed = await inbox.claim_many(conn, [m.message_id for m in unique])
            return await handle(conn, [m for m in unique if m.message_id in claimed])

    return await consume_batch(records, topic, dead_letters, in_one_transaction)


async def _decode(record: Any, topic: Topic, dead_letters: DeadLetters) -> Message | None:
    try:
        return topic.decode(record.value)
    except ValidationError as error:
        await dead_letters.dead_letter_now(record, error)
        return None
