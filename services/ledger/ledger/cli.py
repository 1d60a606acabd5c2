"""`egis-ledger-admin`: API tokens and the audit trail straight in the database, bots through the HTTP API.

    egis-ledger-admin create-token --role admin|user|viewer [--owner-id UUID] --name NAME [--expires-in 30d|ISO]
                               [--json]
    egis-ledger-admin revoke-token TOKEN_ID
    egis-ledger-admin tokens list                                      [--json]
    egis-ledger-admin audit list [--bot-id UUID] [--limit N] [--before-id N]   [--json]
    egis-ledger-admin bots list | create ... | edit BOT_ID ... | delete BOT_ID [--yes]
                         | budget BOT_ID | positions BOT_ID          [--json]

`create` and `edit` take `--take-profit-pct` and `--stop-loss-pct` (percent
from the entry, e.g. 2.5); `edit ... --stop-loss-pct none` removes one.

Tokens and the audit trail need EGIS_DATABASE_URL: creating the first token
cannot ask an API that wants a token. Token changes made here are audited as
made by "cli". Bots need EGIS_LEDGER_URL (default http://127.0.0.1:8081) and
EGIS_LEDGER_TOKEN, so the CLI is held to exactly the API's rules.

Exit codes: 0 done; 1 refused or failed (an API error, no such token); 2 wrong usage; 3 a setting is missing
or the database or the ledger does not answer; 130 interrupted. Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from typing import NoReturn
from uuid import UUID, uuid4

import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
# Lists print as tables, a line per bot or position; --json has every field.
LIST_COLUMNS = {
    "list": (
        "bot_id",
        "name",
        "paused",
        "exchange",
        "exchange_account",
        "initial_budget_usd",
        "default_order_size_usd",
    ),
    "positions": (
        "position_id",
        "symbol",
        "side",
        "status",
        "executed_qty",
        "avg_entry_price",
        "size_usd",
        "requested_size_usd",
        "close_price",
        "closed_at",
        "realised_pnl_usd",
        "fee_usd",
    ),
}
# Optional on create too; `edit --take-profit-pct none` removes the bot's take profit (sends null).
PERCENT_FIELDS = ("take_profit_pct", "stop_loss_pct")
NONE = "none"


EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
PROG = "egis-ledger-admin"


class Failure(Exception):
    """What the user is told in one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """Wrong usage is one line that says where help is, not the usage block (subcommands' parsers are one too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


async def _in_database(work):
    try:
        settings = LedgerSettings()
        url = make_url(settings.database_url.get_secret_value())
    except ValidationError as error:
        problem = error.errors()[0]
        raise Failure(f"EGIS_{str(problem['loc'][0]).upper()}: {problem['msg']}", EXIT_UNAVAILABLE) from None
    except sa_exc.ArgumentError:
        raise Failure("EGIS_DATABASE_URL is not a database URL", EXIT_UNAVAILABLE) from None
    engine = make_engine(settings, pool_size=1)
    try:
        conn = await _connect(engine, url)
        try:
            async with conn.begin():
                return await work(conn)
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def _connect(engine: AsyncEngine, url: URL) -> AsyncConnection:
    try:
        return await engine.connect()
    except Exception as error:  # noqa: BLE001 - refused, unknown host, a login refused: the database is not there
        where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        unset = "" if os.environ.get("EGIS_DATABASE_URL") else " (EGIS_DATABASE_URL is not set: its default)"
        raise Failure(f"the database at {where}{unset} does not answer: {_named(error)}", EXIT_UNAVAILABLE) from None


def _named(error: BaseException) -> str:
    """An error's class and its first line, with no password: drivers name the URL's user, never its password."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def create_token(args: argparse.Namespace) -> int:
    # A user token without --owner-id starts a new owner; keep the printed owner id.
    owner_id = args.owner_id or uuid4()
    issued = asyncio.run(
        _in_database(
            lambda conn: auth.create_token(conn, auth.Role(args.role), owner_id, args.name, expires_at=args.expires_at)
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
    if not revoked:
        raise Failure(f"no live token {args.token_id} (tokens list shows them)")
    print(f"revoked {args.token_id}")
    return 0


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
        raise Failure(f"EGIS_LEDGER_TOKEN is not set: an API token ({PROG} create-token makes one)", EXIT_UNAVAILABLE)
    method, path, body = _request(args)
    base_url = os.environ.get("EGIS_LEDGER_URL", "http://127.0.0.1:8081")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            if args.action == "delete":
                _confirm_delete(client, args)
            response = client.request(method, path, json=body)
    except httpx.TransportError as error:
        unset = "" if os.environ.get("EGIS_LEDGER_URL") else " (EGIS_LEDGER_URL is not set: its default)"
        raise Failure(
            f"the ledger at {base_url}{unset} does not answer ({type(error).__name__})", EXIT_UNAVAILABLE
        ) from None
    except httpx.InvalidURL:
        raise Failure(f"EGIS_LEDGER_URL is not a URL: {base_url!r}", EXIT_UNAVAILABLE) from None
    if response.is_error:
        raise Failure(f"HTTP {response.status_code}: {' '.join(response.text.split())[:300]}")
    data = response.json() if response.content else {"deleted": str(args.bot_id)}
    if args.action in LIST_COLUMNS:
        _print_rows(
            args,
            "bots" if args.action == "list" else f"positions of bot {args.bot_id}",
            LIST_COLUMNS[args.action],
            data,
        )
    else:
        print(json.dumps(data, indent=2) if args.json else _readable(data))
    return 0


def _confirm_delete(client: httpx.Client, args: argparse.Namespace) -> None:
    """A delete goes on only on a yes: typed on the terminal, or given with --yes; no terminal to ask is a no."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise Failure(f"delete bot {args.bot_id}: not confirmed (no terminal to ask on): pass --yes to go ahead")
    found = client.get(f"/v1/bots/{args.bot_id}")
    name = found.json().get("name", "?") if found.is_success else "?"
    answer = input(f"Delete bot {name} ({args.bot_id})? Its signals will be skipped from now on. [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise Failure("nothing changed")


def _readable(data: dict) -> str:
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
    actions.choices["delete"].add_argument("--yes", "-y", action="store_true", help="do not ask first")
    _bot_options(actions.choices["edit"], required=False)


def _expiry(text: str) -> datetime:
    try:
        return auth.expiry(text, datetime.now(UTC))
    except auth.InvalidExpiry as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= audit.MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {audit.MAX_LIMIT}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.rsplit("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version('egis-ledger')}")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("create-token", help="a new API token, printed once")
    token.add_argument("--role", choices=[r.value for r in auth.Role], required=True)
    token.add_argument("--owner-id", type=UUID, help="default: a new owner")
    token.add_argument("--name", required=True, help="who or what holds it")
    token.add_argument(
        "--expires-in",
        dest="expires_at",
        type=_expiry,
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
    try:
        return args.run(args)
    except Failure as failure:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return failure.code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - one clear line for a person, never a traceback
        print(f"{PROG}: {_named(error)}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
