"""An operator's side of the admin topic: sign a command, send it, and collect its whole reply.

The signature is HMAC-SHA256 over the canonical command: the JSON of every field except `signature`,
with sorted keys and no whitespace, so every client and the reconciler sign the same bytes. A large
report comes in parts (`AdminReply.part` of `parts`); `assembled` joins them in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, cast
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from egis_common import contracts as c
from egis_common.topics import ADMIN_COMMANDS, ADMIN_REPLIES, encode, key_for

# The commands that ask the venue may run for the reconciler's longest command time; the rest are quick.
ASKS_THE_VENUE = frozenset({c.AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, c.AdminCommandName.RESOLVE_PENDING})
QUICK_TIMEOUT_S = 60.0
# The reconciler's EGIS_ADMIN_MAX_COMMAND_SECONDS default: how long one command may run there.
MAX_COMMAND_SECONDS = 900.0


class RepliesUnreadable(Exception):
    """The reply topic is not there for this login: its offsets would be awaited forever, not refused."""


def canonical(command: c.AdminCommand) -> bytes:
    fields = command.model_dump(mode="json", exclude={"signature"})
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def signature_for(command: c.AdminCommand, key: str) -> str:
    return hmac.new(key.encode(), canonical(command), hashlib.sha256).hexdigest()


def signed(command: c.AdminCommand, key: str) -> c.AdminCommand:
    return command.model_copy(update={"signature": signature_for(command, key)})


def reply_timeout_s(command: c.AdminCommandName, max_command_seconds: float = MAX_COMMAND_SECONDS) -> float:
    """How long to wait for a reply: a command that asks the venue may run for the reconciler's longest time."""
    return max_command_seconds + QUICK_TIMEOUT_S if command in ASKS_THE_VENUE else QUICK_TIMEOUT_S


def assembled(parts: Sequence[c.AdminReply]) -> c.AdminReply:
    """The whole reply from all its parts (in any order, each once)."""
    ordered = sorted(parts, key=lambda part: part.part)
    assert [p.part for p in ordered] == list(range(1, ordered[0].parts + 1)), "every part, once"
    first = ordered[0]
    report = {
        name: [line for part in ordered for line in part.report[name]] if isinstance(value, list) else value
        for name, value in first.report.items()
    }
    return first.model_copy(update={"report": report})


async def request(
    bootstrap: str,
    command: c.AdminCommand,
    timeout_s: float,
    login: dict[str, Any] | None = None,
    waiting: Callable[[float], None] | None = None,
) -> c.AdminReply | None:
    """Publish the command, then read replies (from the end as of now) until ours has arrived whole.

    `waiting(seconds so far)` is called while the reply is awaited, for a progress display. Whatever fails
    (Kafka not there, a login refused, the reply topic unreadable, the send, the wait, a cancel), both
    clients are stopped before the error goes on: a client whose start failed half-way holds connections
    and tasks all the same."""
    options = login or {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    try:
        await consumer.start()
        if ADMIN_REPLIES.name not in await consumer.topics():  # the topics this login may read
            raise RepliesUnreadable(
                f"this Kafka login may not read {ADMIN_REPLIES.name}, or the topic does not exist: "
                "the reply could never be read, so the command is not sent"
            )
        partitions = [TopicPartition(ADMIN_REPLIES.name, p) for p in range(ADMIN_REPLIES.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before the reply can exist
            await consumer.position(partition)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **options)
        try:
            await producer.start()
            await producer.send_and_wait(ADMIN_COMMANDS.name, encode(command), key=key_for(command))
        finally:  # the producer is done once the command is out
            await producer.stop()
        return await _reply_to(consumer, command.request_id, timeout_s, waiting)
    finally:
        await consumer.stop()


async def _reply_to(
    consumer: AIOKafkaConsumer, request_id: UUID, timeout_s: float, waiting: Callable[[float], None] | None
) -> c.AdminReply | None:
    """Every part of our reply (a part published twice counts once), joined; None if not all came in time."""
    started = time.monotonic()
    parts: dict[int, c.AdminReply] = {}
    while time.monotonic() - started < timeout_s:
        if waiting is not None:
            waiting(time.monotonic() - started)
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                reply = cast(c.AdminReply, ADMIN_REPLIES.decode(record.value))  # the topic carries AdminReply alone
                if reply.request_id == request_id:
                    parts[reply.part] = reply
        if parts and len(parts) == next(iter(parts.values())).parts:
            return assembled(list(parts.values()))
    return None
