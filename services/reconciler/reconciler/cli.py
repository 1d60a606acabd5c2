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
from uuid import UUID, uuid4

from egis_common import admin_client
from egis_common import contracts as c
from egis_common.kafka_login import LoginSettings, client_options
from reconciler.settings import ReconcilerSettings


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="reconciler.cli",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=[name.value for name in c.AdminCommandName])
    parser.add_argument("--confirm", action="store_true", help="apply the repair (default: dry run)")
    parser.add_argument("--bot-id", type=UUID, default=None)
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for the whole reply (default: by command, see below)",
    )
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = default_timeout_s(c.AdminCommandName(args.command))
    return args


def default_timeout_s(command: c.AdminCommandName) -> float:
    default = ReconcilerSettings.model_fields["admin_max_command_seconds"].default
    return admin_client.reply_timeout_s(command, float(os.environ.get("EGIS_ADMIN_MAX_COMMAND_SECONDS", default)))


def build_command(args: argparse.Namespace, operator_id: str, key: str) -> c.AdminCommand:
    command = c.AdminCommand(
        request_id=uuid4(),
        command=c.AdminCommandName(args.command),
        confirm=args.confirm,
        bot_id=args.bot_id,
        operator_id=operator_id,
        signature="",
    )
    return admin_client.signed(command, key)


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
    reply = await admin_client.request(bootstrap, build_command(args, operator_id, key), args.timeout, login)
    if reply is None:
        print(f"error: no reply within {args.timeout}s", file=sys.stderr)
        return 1
    print(render(reply))
    return 0 if reply.status == "ok" else 1


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
