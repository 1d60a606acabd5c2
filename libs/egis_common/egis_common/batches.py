"""Consume a batch of records in one transaction, isolating any record that fails.

Fast path: decode every record, claim all message ids in the inbox and handle
the claimed messages in ONE transaction (one commit, one offset commit).
If that transaction fails, each record gets its own transaction, so one bad
record cannot hold back the others: a record that does not parse, or that
fails `max_attempts` times, goes to the dead-letter topic and the batch moves
on; any other failure is raised, the batch is fetched again, and records
already processed are no-ops thanks to the inbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.broker import DeadLetters
from egis_common.contracts import Message
from egis_common.logs import get_logger
from egis_common.outbox import Inbox, UnitOfWork
from egis_common.topics import Topic

R = TypeVar("R")
Handler = Callable[[AsyncConnection, list[Message]], Awaitable[list[R]]]
log = get_logger(__name__)


async def process_batch(
    records: Sequence[Any], topic: Topic, uow: UnitOfWork, inbox: Inbox, dead_letters: DeadLetters, handle: Handler
) -> list[R]:
    decoded = [(record, message) for record in records if (message := await _decode(record, topic, dead_letters))]
    try:
        return await _in_one_transaction(decoded, uow, inbox, handle)
    except Exception as error:
        log.warning("batch_failed_isolating_records", topic=topic.name, records=len(decoded), error=repr(error))
    results: list[R] = []
    for record, message in decoded:
        results.extend(await _one_record(record, message, uow, inbox, dead_letters, handle))
    return results


async def _decode(record: Any, topic: Topic, dead_letters: DeadLetters) -> Message | None:
    try:
        return topic.decode(record.value)
    except ValidationError as error:
        await dead_letters.send(record, error, attempts=1)
        return None


async def _in_one_transaction(decoded: list[tuple[Any, Message]], uow: UnitOfWork, inbox: Inbox, handle: Handler) -> list[R]:
    unique = list({message.message_id: message for _, message in decoded}.values())
    async with uow.begin() as conn:
        claimed = await inbox.claim_many(conn, [m.message_id for m in unique])
        return await handle(conn, [m for m in unique if m.message_id in claimed])


async def _one_record(
    record: Any, message: Message, uow: UnitOfWork, inbox: Inbox, dead_letters: DeadLetters, handle: Handler
) -> list[R]:
    record_id = (record.topic, record.partition, record.offset)
    try:
        result = await _in_one_transaction([(record, message)], uow, inbox, handle)
    except Exception as error:
        attempts = dead_letters.record_failure(record_id, error)
        if attempts is None:
            raise
        await dead_letters.send(record, error, attempts)
        dead_letters.forget(record_id)
        return []
    dead_letters.forget(record_id)
    return result
