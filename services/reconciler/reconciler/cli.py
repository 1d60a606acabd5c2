"""`python -m reconciler.cli <command> [--confirm] [--bot-id UUID]`: a signed admin command, and its report.

    drift-report | sync-wrong-closed-positions | resolve-pending | reconcile-paper-positions

Dry-run unless --confirm. Needs EGIS_OPERATOR_ID and EGIS_OPERATOR_KEY (the key
the reconciler knows this operator by), EGIS_KAFKA_BOOTSTRAP_SERVERS, and the
operator's Kafka login where Kafka requires one (EGIS_KAFKA_USERNAME and
EGIS_KAFKA_PASSWORD; EGIS_KAFKA_SSL for TLS). `source .egis/local/env` gives all of them on the local system.

How long it waits for the reply (--timeout) follows the command: the commands
that ask the venue (sync-wrong-closed-positions, resolve-pending) may run for
the reconciler's EGIS_ADMIN_MAX_COMMAND_SECONDS (read from this environment too;
900 s by default), so it waits that long and a minute more; the others, a minute. A large report comes in
parts: all of them are collected before the report is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from egis_common import contracts as c
from egis_common.kafka_login import LoginSettings, client_options
from egis_common.topics import ADMIN_COMMANDS, ADMIN_REPLIES, encode, key_for

from reconciler import auth
from reconciler.domain import assembled
from reconciler.settings import ReconcilerSettings

# The commands that ask the venue may run for the reconciler's longest command time; the rest are quick.
ASKS_THE_VENUE = frozenset({c.AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, c.AdminCommandName.RESOLVE_PENDING})
QUICK_TIMEOUT_S = 60.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reconciler.cli", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=[name.value for name in c.AdminCommandName])
    parser.add_argument("--confirm", action="store_true", help="apply the repair (default: dry run)")
    parser.add_argument("--bot-id", type=UUID, default=None)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for the whole reply (default: by command, see below)")
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = default_timeout_s(c.AdminCommandName(args.command))
    return args


def default_timeout_s(command: c.AdminCommandName) -> float:
    if command in ASKS_THE_VENUE:
        default = ReconcilerSettings.model_fields["admin_max_command_seconds"].default
        return float(os.environ.get("EGIS_ADMIN_MAX_COMMAND_SECONDS", default)) + QUICK_TIMEOUT_S
    return QUICK_TIMEOUT_S


def build_command(args: argparse.Namespace, operator_id: str, key: str) -> c.AdminCommand:
    command = c.AdminCommand(request_id=uuid4(), command=c.AdminCommandName(args.command), confirm=args.confirm,
                             bot_id=args.bot_id, operator_id=operator_id, signature="")
    return auth.signed(command, key)


async def request(bootstrap: str, command: c.AdminCommand, timeout_s: float,
                  login: dict[str, Any] | None = None) -> c.AdminReply | None:
    """Publish the command, then read replies (from the end as of now) until ours arrives."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **(login or {}))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **(login or {}))
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
    """Every part of our reply (a part published twice counts once), joined; None if not all came in time."""
    deadline = time.monotonic() + timeout_s
    parts: dict[int, c.AdminReply] = {}
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                reply = ADMIN_REPLIES.decode(record.value)
                if reply.request_id == request_id:
                    parts[reply.part] = reply
        if parts and len(parts) == next(iter(parts.values())).parts:
            return assembled(list(parts.values()))
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
    login = client_options(LoginSettings())  # the operator's own principal: admin commands and replies only
    reply = await request(bootstrap, build_command(args, operator_id, key), args.timeout, login)
    if reply is None:
        print(f"error: no reply within {args.timeout}s", file=sys.stderr)
        return 1
    print(render(reply))
    return 0 if reply.status == "ok" else 1


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
