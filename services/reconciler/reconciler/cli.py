"""`python -m reconciler.cli <command> [--confirm] [--bot-id UUID]`: a signed admin command, and its report.

    drift-report | sync-wrong-closed-positions | resolve-pending | reconcile-paper-positions

Dry-run unless --confirm. Needs EGIS_OPERATOR_ID and EGIS_OPERATOR_KEY (the key
the reconciler knows this operator by) and EGIS_KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from egis_common import contracts as c
from egis_common.topics import ADMIN_COMMANDS, ADMIN_REPLIES, encode, key_for

from reconciler import auth


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reconciler.cli", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=[name.value for name in c.AdminCommandName])
    parser.add_argument("--confirm", action="store_true", help="apply the repair (default: dry run)")
    parser.add_argument("--bot-id", type=UUID, default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    return parser.parse_args(argv)


def build_command(args: argparse.Namespace, operator_id: str, key: str) -> c.AdminCommand:
    command = c.AdminCommand(request_id=uuid4(), command=c.AdminCommandName(args.command), confirm=args.confirm,
                             bot_id=args.bot_id, operator_id=operator_id, signature="")
    return auth.signed(command, key)


async def request(bootstrap: str, command: c.AdminCommand, timeout_s: float) -> c.AdminReply | None:
    """Publish the command, then read replies (from the end as of now) until ours arrives."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(ADMIN_REPLIES.name, p) for p in range(ADMIN_REPLIES.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before the reply can exist
            await consumer.position(partition)
        await producer.send_and_wait(ADMIN_COMMANDS.name, encode(command), key=key_for(command))
        return await _reply_to(consumer, command.request_id, timeout_s)
    finally:
        await producer.stop()
        await consumer.stop()


async def _reply_to(consumer: AIOKafkaConsumer, request_id: UUID, timeout_s: float) -> c.AdminReply | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                reply = ADMIN_REPLIES.decode(record.value)
                if reply.request_id == request_id:
                    return reply
    return None


def render(reply: c.AdminReply) -> str:
    mode = "dry run" if reply.dry_run else "confirmed"
    lines = [f"{reply.command.value}: {reply.status} ({mode}), request {reply.request_id}"]
    for name, value in reply.report.items():
        if isinstance(value, list):
            lines.append(f"{name}: {len(value)}")
            lines.extend("  - " + ", ".join(f"{k}={v}" for k, v in item.items() if k != "backfill") for item in value)
        else:
            lines.append(f"{name}: {value}")
    return "\n".join(lines)


async def run(argv: list[str] | None = None) -> int:
    args = parse(argv)
    operator_id, key = os.environ.get("EGIS_OPERATOR_ID"), os.environ.get("EGIS_OPERATOR_KEY")
    if not operator_id or not key:
        print("error: set EGIS_OPERATOR_ID and EGIS_OPERATOR_KEY", file=sys.stderr)
        return 2
    bootstrap = os.environ.get("EGIS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    reply = await request(bootstrap, build_command(args, operator_id, key), args.timeout)
    if reply is None:
        print(f"error: no reply within {args.timeout}s", file=sys.stderr)
        return 1
    print(render(reply))
    return 0 if reply.status == "ok" else 1


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
