"""Consuming a batch whose handling spans several transactions (an exchange call sits between them).

`egis_common.batches.process_batch` does this for one-transaction handlers. Here
the handler orchestrates its own transactions; what is shared is the rule for
failures: if the batch fails, each record is tried alone, so one bad record
cannot hold back the others; a record that fails `max_attempts` times (or does
not parse) goes to the dead-letter topic, any other failure is raised and the
batch comes again, where everything already done is a no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from egis_common.broker import DeadLetters
from egis_common.contracts import Message
from egis_common.logs import get_logger
from egis_common.topics import Topic

R = TypeVar("R")
log = get_logger(__name__)


async def consume_batch(records: Sequence[Any], topic: Topic, dead_letters: DeadLetters,
                        handle: Callable[[list[Message]], Awaitable[list[R]]]) -> list[R]:
    decoded = [(record, message) for record in records if (message := await _decode(record, topic, dead_letters))]
    if len(decoded) > 1:
        try:
            return await handle([message for _, message in decoded])
        except Exception as error:
            log.warning("batch_failed_isolating_records", topic=topic.name, records=len(decoded), error=repr(error))
    results: list[R] = []
    for record, message in decoded:
        results.extend(await _one(record, message, dead_letters, handle))
    return results


async def _decode(record: Any, topic: Topic, dead_letters: DeadLetters) -> Message | None:
    try:
        return topic.decode(record.value)
    except ValidationError as error:
        await dead_letters.send(record, error, attempts=1)
        return None


async def _one(record: Any, message: Message, dead_letters: DeadLetters,
               handle: Callable[[list[Message]], Awaitable[list[R]]]) -> list[R]:
    record_id = (record.topic, record.partition, record.offset)
    try:
        result = await handle([message])
    except Exception as error:
        attempts = dead_letters.record_failure(record_id, error)
        if attempts is None:
            raise
        await dead_letters.send(record, error, attempts)
        dead_letters.forget(record_id)
        return []
    dead_letters.forget(record_id)
    return result
