"""`egis-ledger-admin`: API tokens straight in the database, bots through the HTTP API.

    egis-ledger-admin create-token --role admin|user [--owner-id UUID] --name NAME
    egis-ledger-admin revoke-token TOKEN_ID
    egis-ledger-admin bots list | create ... | edit BOT_ID ... | delete BOT_ID
                         | budget BOT_ID | positions BOT_ID          [--json]

`create` and `edit` take `--take-profit-pct` and `--stop-loss-pct` (percent
from the entry, e.g. 2.5); `edit ... --stop-loss-pct none` removes one.

Tokens need EGIS_DATABASE_URL: creating the first token cannot ask an API that
wants a token. Bots need EGIS_LEDGER_URL (default http://127.0.0.1:8081) and
EGIS_LEDGER_TOKEN, so the CLI is held to exactly the API's rules.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from uuid import UUID, uuid4

import httpx

from egis_common.contracts import ExchangeName
from egis_common.db import make_engine
from ledger import auth
from ledger.settings import LedgerSettings

BOT_FIELDS = ("name", "signal_key", "exchange", "exchange_account", "initial_budget_usd",
              "default_order_size_usd", "paused", "owner_id")
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
    issued = asyncio.run(_in_database(lambda conn: auth.create_token(conn, auth.Role(args.role), owner_id, args.name)))
    print(f"token_id: {issued.token_id}\nrole: {issued.role.value}\nowner_id: {issued.owner_id}\nname: {issued.name}")
    print(f"token: {issued.token}\n(shown once; only its hash is stored)")
    return 0


def revoke_token(args: argparse.Namespace) -> int:
    revoked = asyncio.run(_in_database(lambda conn: auth.revoke_token(conn, args.token_id)))
    print(f"revoked {args.token_id}" if revoked else f"no live token {args.token_id}")
    return 0 if revoked else 1


def _request(args: argparse.Namespace) -> tuple[str, str, dict | None]:
    """The HTTP call a `bots` subcommand stands for."""
    body = {name: getattr(args, name) for name in BOT_FIELDS + PERCENT_FIELDS if getattr(args, name, None) is not None}
    body.update({name: None for name in PERCENT_FIELDS if body.get(name) == NONE})
    bot = f"/v1/bots/{args.bot_id}" if getattr(args, "bot_id", None) else "/v1/bots"
    return {
        "list": ("GET", bot, None), "create": ("POST", bot, body), "edit": ("PATCH", bot, body),
        "delete": ("DELETE", bot, None), "budget": ("GET", f"{bot}/budget", None),
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
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="PERCENT",
                            help=f"{what} as a percentage from the entry, e.g. 2.5" + (
                                f"; '{NONE}' removes it" if not required else ""))


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egis-ledger-admin", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("create-token", help="a new API token, printed once")
    token.add_argument("--role", choices=[r.value for r in auth.Role], required=True)
    token.add_argument("--owner-id", type=UUID, help="default: a new owner")
    token.add_argument("--name", required=True, help="who or what holds it")
    token.set_defaults(run=create_token)
    revoke = commands.add_parser("revoke-token", help="refuse a token from now on")
    revoke.add_argument("token_id", type=UUID)
    revoke.set_defaults(run=revoke_token)
    _bots_parser(commands.add_parser("bots", help="manage bots through the HTTP API"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "paused", None) is not None:
        args.paused = args.paused == "true"
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
