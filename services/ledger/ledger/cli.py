"""`egis-ledger-admin`: API tokens and the audit trail straight in the database, bots through the HTTP API.

    egis-ledger-admin create-token --role admin|user|viewer [--owner-id UUID] --name NAME [--expires-in 30d|ISO]
                               [--json]
    egis-ledger-admin revoke-token TOKEN_ID
    egis-ledger-admin tokens list                                      [--json]
    egis-ledger-admin audit list [--bot-id UUID] [--limit N] [--before-id N]   [--json]
    egis-ledger-admin bots list | create ... | edit BOT_ID ... | delete BOT_ID
                         | budget BOT_ID | positions BOT_ID          [--json]

`create` and `edit` take `--take-profit-pct` and `--stop-loss-pct` (percent
from the entry, e.g. 2.5); `edit ... --stop-loss-pct none` removes one.

Tokens and the audit trail need EGIS_DATABASE_URL: creating the first token
cannot ask an API that wants a token. Token changes made here are audited as
made by "cli". Bots need EGIS_LEDGER_URL (default http://127.0.0.1:8081) and
EGIS_LEDGER_TOKEN, so the CLI is held to exactly the API's rules.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from uuid import UUID, uuid4

import httpx
from rich.console import Console
from rich.table import Table

from egis_common.contracts import ExchangeName
from egis_common.db import make_engine
from ledger import audit, auth
from ledger.settings import LedgerSettings

BOT_FIELDS = (
    "name",
    "signal_key",
    "exchange",
    "exchange_account",
    "initial_budget_usd",
    "default_order_size_usd",
    "paused",
    "owner_id",
)
# Optional on create too; `edit --take-profit-pct none` removes the bot's take profit (sends null).
PERCENT_FIELDS = ("take_profit_pct", "stop_loss_pct")
NONE = "none"


async def _in_database(work):
    engine = make_engine(LedgerSettings(), pool_size=1)
    try:
        async with engine.begin() as conn:
            return await work(conn)
    finally:
        await engine.dispose()


def create_token(args: argparse.Namespace) -> int:
    # A user token without --owner-id starts a new owner; keep the printed owner id.
    owner_id = args.owner_id or uuid4()
    try:
        expires_at = auth.expiry(args.expires_in, datetime.now(UTC)) if args.expires_in else None
    except auth.InvalidExpiry as error:
        print(f"error: --expires-in: {error}", file=sys.stderr)
        return 2
    issued = asyncio.run(
        _in_database(
            lambda conn: auth.create_token(conn, auth.Role(args.role), owner_id, args.name, expires_at=expires_at)
        )
    )
    if args.json:  # for scripts, such as the local system's first `up`
        print(json.dumps(_issued(issued), indent=2))
        return 0
    print(f"token_id: {issued.token_id}\nrole: {issued.role.value}\nowner_id: {issued.owner_id}\nname: {issued.name}")
    print(f"expires_at: {issued.expires_at.isoformat() if issued.expires_at else 'never'}")
    print(f"token: {issued.token}\n(shown once; only its hash is stored)")
    return 0


def _issued(issued: auth.IssuedToken) -> dict[str, str | None]:
    return {
        "token_id": str(issued.token_id),
        "role": issued.role.value,
        "owner_id": str(issued.owner_id),
        "name": issued.name,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
        "token": issued.token,
    }


def revoke_token(args: argparse.Namespace) -> int:
    revoked = asyncio.run(_in_database(lambda conn: auth.revoke_token(conn, args.token_id)))
    print(f"revoked {args.token_id}" if revoked else f"no live token {args.token_id}")
    return 0 if revoked else 1


def list_tokens(args: argparse.Namespace) -> int:
    rows = asyncio.run(_in_database(auth.list_tokens))
    columns = ("token_id", "name", "role", "owner_id", "created_at", "last_used_at", "expires_at", "revoked_at")
    _print_rows(args, "API tokens", columns, [audit.state(row) for row in rows])
    return 0


def list_audit(args: argparse.Namespace) -> int:
    rows = asyncio.run(
        _in_database(lambda conn: audit.entries(conn, bot_id=args.bot_id, before_id=args.before_id, limit=args.limit))
    )
    entries = [audit.state(row) for row in rows]
    if not args.json:
        entries = [
            {
                **entry,
                "who": _who(entry),
                "subject": entry["bot_id"] or entry["token_id"],
                "changes": audit.describe_change(entry["before"], entry["after"]),
            }
            for entry in entries
        ]
    _print_rows(args, "audit, newest first", ("audit_id", "at", "who", "action", "subject", "changes"), entries)
    return 0


def _who(entry: dict) -> str:
    if entry["actor_token_id"] is None:
        return entry["actor_name"]
    return f"{entry['actor_name']} ({entry['actor_role']}, {entry['actor_token_id']})"


def _print_rows(args: argparse.Namespace, title: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*("" if row[name] is None else str(row[name]) for name in columns))
    console = Console()
    # Piped or captured, nothing limits the width: keep ids and times whole instead of folding them at 80.
    (console if console.is_terminal else Console(width=10_000)).print(table)


def _request(args: argparse.Namespace) -> tuple[str, str, dict | None]:
    """The HTTP call a `bots` subcommand stands for."""
    body = {name: getattr(args, name) for name in BOT_FIELDS + PERCENT_FIELDS if getattr(args, name, None) is not None}
    body.update({name: None for name in PERCENT_FIELDS if body.get(name) == NONE})
    bot = f"/v1/bots/{args.bot_id}" if getattr(args, "bot_id", None) else "/v1/bots"
    return {
        "list": ("GET", bot, None),
        "create": ("POST", bot, body),
        "edit": ("PATCH", bot, body),
        "delete": ("DELETE", bot, None),
        "budget": ("GET", f"{bot}/budget", None),
        "positions": ("GET", f"{bot}/positions", None),
    }[args.action]


def bots_command(args: argparse.Namespace) -> int:
    token = os.environ.get("EGIS_LEDGER_TOKEN")
    if not token:
        print("error: set EGIS_LEDGER_TOKEN (egis-ledger-admin create-token makes one)", file=sys.stderr)
        return 2
    method, path, body = _request(args)
    base_url = os.environ.get("EGIS_LEDGER_URL", "http://127.0.0.1:8081")
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as error:
        print(f"error: {base_url}: {error}", file=sys.stderr)
        return 1
    if response.is_error:
        print(f"error: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    data = response.json() if response.content else {"deleted": str(args.bot_id)}
    print(json.dumps(data, indent=2) if args.json else _readable(data))
    return 0


def _readable(data: dict | list) -> str:
    if isinstance(data, list):
        return "\n\n".join(_readable(item) for item in data) if data else "(none)"
    width = max(len(key) for key in data)
    lines = [f"{key.ljust(width)}  {value}" for key, value in data.items() if key != "webhook_secret"]
    if "webhook_secret" in data:
        lines.append(f"\nwebhook_secret: {data['webhook_secret']}\n(shown once; only its hash is stored)")
    return "\n".join(lines)


def _bot_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    for name in BOT_FIELDS[:-2]:
        choices = [e.value for e in ExchangeName] if name == "exchange" else None
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, required=required, choices=choices)
    parser.add_argument("--paused", choices=("true", "false"), default=None)
    for name in PERCENT_FIELDS:
        what = name.removesuffix("_pct").replace("_", " ")
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            metavar="PERCENT",
            help=f"{what} as a percentage from the entry, e.g. 2.5"
            + (f"; '{NONE}' removes it" if not required else ""),
        )


def _bots_parser(bots: argparse.ArgumentParser) -> None:
    bots.set_defaults(run=bots_command)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON")
    actions = bots.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[output])
    create = actions.add_parser("create", parents=[output])
    _bot_options(create, required=True)
    create.add_argument("--owner-id", dest="owner_id", help="admin only; default: the token's owner")
    for action in ("edit", "delete", "budget", "positions"):
        actions.add_parser(action, parents=[output]).add_argument("bot_id", type=UUID)
    _bot_options(actions.choices["edit"], required=False)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= audit.MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {audit.MAX_LIMIT}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egis-ledger-admin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"egis-ledger-admin {version('egis-ledger')}")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("create-token", help="a new API token, printed once")
    token.add_argument("--role", choices=[r.value for r in auth.Role], required=True)
    token.add_argument("--owner-id", type=UUID, help="default: a new owner")
    token.add_argument("--name", required=True, help="who or what holds it")
    token.add_argument(
        "--expires-in",
        metavar="30d|ISO-TIME",
        help="refused from then on: 90m, 12h, 30d, 2w from now, or a time (UTC unless it says)",
    )
    token.add_argument("--json", action="store_true", help="print JSON, the token included")
    token.set_defaults(run=create_token)
    revoke = commands.add_parser("revoke-token", help="refuse a token from now on")
    revoke.add_argument("token_id", type=UUID)
    revoke.set_defaults(run=revoke_token)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tokens = commands.add_parser("tokens", help="the API tokens (never their secrets)").add_subparsers(
        dest="action", required=True
    )
    tokens.add_parser("list", parents=[output]).set_defaults(run=list_tokens)
    audit_list = (
        commands.add_parser("audit", help="who changed what, newest first")
        .add_subparsers(dest="action", required=True)
        .add_parser("list", parents=[output])
    )
    audit_list.add_argument("--bot-id", type=UUID, help="only this bot's changes")
    audit_list.add_argument("--limit", type=_limit, default=50, metavar="N", help=f"at most {audit.MAX_LIMIT}")
    audit_list.add_argument("--before-id", type=int, metavar="AUDIT_ID", help="the next page: older than this")
    audit_list.set_defaults(run=list_audit)
    _bots_parser(commands.add_parser("bots", help="manage bots through the HTTP API"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "paused", None) is not None:
        args.paused = args.paused == "true"
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
