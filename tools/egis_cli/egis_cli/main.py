"""`egis`: run Egis on this machine, manage bots and tokens through the ledger's API, run operators' repairs.

Bots and tokens need EGIS_LEDGER_URL and EGIS_LEDGER_TOKEN (an API token); repairs need
EGIS_KAFKA_BOOTSTRAP_SERVERS, a Kafka login (EGIS_KAFKA_USERNAME, EGIS_KAFKA_PASSWORD) and the operator's
EGIS_OPERATOR_ID and EGIS_OPERATOR_KEY. When the environment names no ledger (no EGIS_LEDGER_URL), or no
Kafka, all of that group comes from the local system's env file (.egis/local/env, or under
EGIS_LOCAL_STATE_DIR), which `./egis up` writes with an admin token it makes once. Elsewhere the first admin
token is made by `egis-ledger-admin create-token --role admin`. `egis trace` reads the database
(EGIS_DATABASE_URL, from the environment, else from that env file) and the services' logs.

Exit codes: 0 done (a dry run included); 1 refused or failed (an API error, a refused or failed repair, no
reply in time, a question answered no; for `status`, a component that does not answer or is stopped); 2 wrong
usage; 3 a setting is missing or a service does not answer; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4

import httpx
import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from egis_common import admin_client
from egis_common import contracts as c
from egis_common.kafka_login import LoginSettings, client_options

EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
LEDGER_TIMEOUT_S = 15.0

out = Console(highlight=False)
if not out.is_terminal:  # piped or captured: nothing limits the width, so ids and times stay whole
    out = Console(highlight=False, width=10_000)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, whatever its length
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help=__doc__.split("\n\n")[0],
    epilog=__doc__.split("\n\n", 1)[1],
)
bots_app = typer.Typer(
    no_args_is_help=True, help="Bots, through the ledger's API (EGIS_LEDGER_URL, EGIS_LEDGER_TOKEN)."
)
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens, through the ledger's API (an admin token).")
repair_app = typer.Typer(
    no_args_is_help=True,
    help="Operators' repairs over the admin topic, signed with EGIS_OPERATOR_ID/EGIS_OPERATOR_KEY; "
    "a dry run unless --confirm.",
)
app.add_typer(bots_app, name="bots")
app.add_typer(tokens_app, name="tokens")
app.add_typer(repair_app, name="repair")

Json = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="do not ask before acting")]
F = TypeVar("F", bound=Callable[..., Any])


class Failure(Exception):
    """What the user is told in one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def clean_errors(command: F) -> F:
    """One line on stderr and a documented exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Failure as failure:
            err.print(f"egis: {failure}", markup=False)
            raise typer.Exit(failure.code) from None
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 - one clear line for a person
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            err.print(f"egis: {type(error).__name__}: {first}", markup=False)
            raise typer.Exit(EXIT_FAILED) from None

    return run  # type: ignore[return-value]


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        render()


def ask(question: str, yes: bool) -> None:
    """Go on only on a yes: asked on the terminal, or given with --yes; no terminal to ask is a no."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Failure(f"{question} Not confirmed (no terminal to ask on): pass --yes to go ahead", EXIT_FAILED)
    if not typer.confirm(question, default=False):
        raise Failure("nothing changed", EXIT_FAILED)


LEDGER_ANCHOR, KAFKA_ANCHOR = "EGIS_LEDGER_URL", "EGIS_KAFKA_BOOTSTRAP_SERVERS"


def setting(name: str, hint: str, anchor: str) -> str:
    """From the environment when it names `anchor` (where that system is), else from the local env file: a token
    or a key is only ever sent to the system it came with."""
    if os.environ.get(anchor):
        value, where = os.environ.get(name), "the environment"
    else:
        value, where = local_settings().get(name), str(local_env_file())
        if not local_env_file().exists():
            where = f"the environment, and there is no {where}"
    if not value:
        raise Failure(f"{name} is not set in {where}: {hint}", EXIT_UNAVAILABLE)
    return value


def local_env_file() -> Path:
    from egis_localinfra.cli import STATE_DIR  # only when the environment names no system: it costs an import

    return STATE_DIR / "env"


@functools.cache
def local_settings() -> dict[str, str]:
    """The `export NAME='value'` lines `./egis up` writes; nothing when there is no such file."""
    from egis_localinfra.cli import env_settings

    try:
        text = local_env_file().read_text()
    except OSError:
        return {}
    return env_settings(text)


# ---------------------------------------------------------------- the ledger's API


class Ledger:
    def __init__(self) -> None:
        self.url = setting(LEDGER_ANCHOR, "the ledger's URL; ./egis up writes it", LEDGER_ANCHOR).rstrip("/")
        token = setting(
            "EGIS_LEDGER_TOKEN",
            "an API token; ./egis up makes one, egis-ledger-admin create-token elsewhere",
            LEDGER_ANCHOR,
        )
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=LEDGER_TIMEOUT_S
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Failure(
                f"the ledger at {self.url} does not answer ({type(error).__name__}); is Egis up? ./egis status",
                EXIT_UNAVAILABLE,
            ) from None
        if response.status_code >= 400:
            raise Failure(f"{method} {path}: {response.status_code} {_problem(response)}")
        return response.json() if response.content else None


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or body
        return detail if isinstance(detail, str) else json.dumps(detail, default=str)[:300]
    return str(body)[:300]


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    shown = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*("" if value is None else str(value) for value in row))
    return shown


def status_of(bot: dict) -> str:
    return "paused" if bot["paused"] else "live"


@bots_app.command("list")
@clean_errors
def bots_list(as_json: Json = False) -> None:
    """Every bot the token may see: one line each."""
    bots = Ledger().call("GET", "/v1/bots")
    emit(
        bots,
        as_json,
        lambda: out.print(
            table(
                None,
                ["bot", "name", "status", "exchange", "account", "budget", "order size"],
                [
                    [
                        b["bot_id"],
                        b["name"],
                        status_of(b),
                        b["exchange"],
                        b["exchange_account"],
                        b["initial_budget_usd"],
                        b["default_order_size_usd"],
                    ]
                    for b in bots
                ],
            )
            if bots
            else "no bots"
        ),
    )


@bots_app.command("show")
@clean_errors
def bots_show(bot_id: UUID, as_json: Json = False) -> None:
    """A bot, its budget and its positions."""
    ledger = Ledger()
    with Status("asking the ledger", console=err):
        bot = ledger.call("GET", f"/v1/bots/{bot_id}")
        budget = ledger.call("GET", f"/v1/bots/{bot_id}/budget")
        positions = ledger.call("GET", f"/v1/bots/{bot_id}/positions")
    data = {"bot": bot, "budget": budget, "positions": positions}

    def render() -> None:
        out.print(
            f"{bot['name']} ({status_of(bot)}), {bot['exchange']} account {bot['exchange_account']}, "
            f"signal key {bot['signal_key']}"
        )
        out.print(
            f"budget: {budget['available_usd']} available of {budget['initial_usd']} "
            f"({budget['reserved_open_usd']} in open positions, {budget['reserved_opening_usd']} opening)"
        )
        out.print(
            table(
                "positions",
                [
                    "symbol",
                    "side",
                    "status",
                    "qty",
                    "entry",
                    "size (requested)",
                    "closed at",
                    "close price",
                    "pnl",
                    "fees",
                ],
                [
                    [
                        p["symbol"],
                        p["side"],
                        p["status"],
                        p["executed_qty"],
                        p["avg_entry_price"],
                        _size(p),
                        p["closed_at"],
                        p["close_price"],
                        p["realised_pnl_usd"],
                        p["fee_usd"],
                    ]
                    for p in positions
                ],
            )
            if positions
            else "no positions"
        )

    emit(data, as_json, render)


def _size(position: dict) -> str:
    size, requested = position["size_usd"], position["requested_size_usd"]
    return f"${size}" if Decimal(size) == Decimal(requested) else f"${size} (requested ${requested})"


@bots_app.command("create")
@clean_errors
def bots_create(
    name: Annotated[str, typer.Option(help="a name for people")],
    signal_key: Annotated[str, typer.Option(help="the webhook's signal_key for this bot")],
    exchange_account: Annotated[str, typer.Option(help="the venue account it trades on")],
    initial_budget_usd: Annotated[str, typer.Option(help="e.g. 1000")],
    default_order_size_usd: Annotated[str, typer.Option(help="e.g. 25")],
    exchange: Annotated[c.ExchangeName, typer.Option(help="the venue")] = c.ExchangeName.PAPER,
    take_profit_pct: Annotated[str | None, typer.Option(help="percent from the entry, e.g. 2.5")] = None,
    stop_loss_pct: Annotated[str | None, typer.Option(help="percent from the entry, e.g. 1")] = None,
    owner_id: Annotated[UUID | None, typer.Option(help="admin only: whose bot it is")] = None,
    as_json: Json = False,
) -> None:
    """Create a bot; its webhook secret is shown once."""
    body = {
        "name": name,
        "signal_key": signal_key,
        "exchange": exchange.value,
        "exchange_account": exchange_account,
        "initial_budget_usd": initial_budget_usd,
        "default_order_size_usd": default_order_size_usd,
        "take_profit_pct": take_profit_pct,
        "stop_loss_pct": stop_loss_pct,
        "owner_id": str(owner_id) if owner_id else None,
    }
    bot = Ledger().call("POST", "/v1/bots", json={k: v for k, v in body.items() if v is not None})
    emit(
        bot,
        as_json,
        lambda: out.print(
            f"bot {bot['bot_id']} created ({bot['name']}, {status_of(bot)}).\n"
            f"webhook secret (shown once): {bot['webhook_secret']}"
        ),
    )


NONE = "none"


@bots_app.command("edit")
@clean_errors
def bots_edit(
    bot_id: UUID,
    name: Annotated[str | None, typer.Option(help="a name for people")] = None,
    signal_key: Annotated[str | None, typer.Option(help="the webhook's signal_key for this bot")] = None,
    exchange_account: Annotated[str | None, typer.Option(help="the venue account it trades on")] = None,
    initial_budget_usd: Annotated[str | None, typer.Option(help="e.g. 1000")] = None,
    default_order_size_usd: Annotated[str | None, typer.Option(help="e.g. 25")] = None,
    take_profit_pct: Annotated[
        str | None, typer.Option(help=f"percent from the entry, e.g. 2.5; '{NONE}' removes it")
    ] = None,
    stop_loss_pct: Annotated[
        str | None, typer.Option(help=f"percent from the entry, e.g. 1; '{NONE}' removes it")
    ] = None,
    as_json: Json = False,
) -> None:
    """Change a bot: only the options given change."""
    given = {
        "name": name,
        "signal_key": signal_key,
        "exchange_account": exchange_account,
        "initial_budget_usd": initial_budget_usd,
        "default_order_size_usd": default_order_size_usd,
        "take_profit_pct": take_profit_pct,
        "stop_loss_pct": stop_loss_pct,
    }
    # The API reads an explicit null as "remove" for the percentages (and refuses it for the rest).
    body = {k: None if v == NONE else v for k, v in given.items() if v is not None}
    if not body:
        raise Failure("bots edit: nothing to change: give at least one option (egis bots edit --help)", EXIT_USAGE)
    bot = Ledger().call("PATCH", f"/v1/bots/{bot_id}", json=body)
    emit(
        bot,
        as_json,
        lambda: out.print(
            f"{bot['name']} ({status_of(bot)}) changed: "
            + ", ".join(f"{k} {bot[k] if bot[k] is not None else 'none'}" for k in body)
        ),
    )


def _set_paused(bot_id: UUID, paused: bool, as_json: bool) -> None:
    bot = Ledger().call("PATCH", f"/v1/bots/{bot_id}", json={"paused": paused})
    emit(bot, as_json, lambda: out.print(f"{bot['name']} is {status_of(bot)}"))


@bots_app.command("pause")
@clean_errors
def bots_pause(bot_id: UUID, as_json: Json = False) -> None:
    """Pause a bot: its signals are skipped until it resumes."""
    _set_paused(bot_id, True, as_json)


@bots_app.command("resume")
@clean_errors
def bots_resume(bot_id: UUID, as_json: Json = False) -> None:
    """Resume a paused bot."""
    _set_paused(bot_id, False, as_json)


@bots_app.command("delete")
@clean_errors
def bots_delete(bot_id: UUID, yes: Yes = False, as_json: Json = False) -> None:
    """Delete a bot (refused while it has positions open); asks first."""
    ledger = Ledger()
    bot = ledger.call("GET", f"/v1/bots/{bot_id}")
    ask(f"Delete bot {bot['name']} ({bot_id})? Its signals will be skipped from now on.", yes)
    ledger.call("DELETE", f"/v1/bots/{bot_id}")
    emit({"bot_id": str(bot_id), "deleted": True}, as_json, lambda: out.print(f"bot {bot['name']} deleted"))


@tokens_app.command("list")
@clean_errors
def tokens_list(as_json: Json = False) -> None:
    """Every API token: name, role, owner, created, last used, expiry; never the secret."""
    tokens = Ledger().call("GET", "/v1/tokens")
    emit(
        tokens,
        as_json,
        lambda: out.print(
            table(
                None,
                ["token", "name", "role", "owner", "created", "last used", "expires", "revoked"],
                [
                    [
                        t["token_id"],
                        t["name"],
                        t["role"],
                        t["owner_id"],
                        t["created_at"],
                        t["last_used_at"],
                        t["expires_at"],
                        t["revoked_at"],
                    ]
                    for t in tokens
                ],
            )
            if tokens
            else "no tokens"
        ),
    )


class TokenRole(str, Enum):
    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"


@tokens_app.command("create")
@clean_errors
def tokens_create(
    name: Annotated[str, typer.Option(help="who or what holds it")],
    role: Annotated[TokenRole, typer.Option(help="admin: every bot; user: its owner's bots; viewer: reads only")],
    owner_id: Annotated[
        UUID | None, typer.Option(help="whose bots it manages (a viewer needs one); default: a new owner")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option(help="refused from then on: 90m, 12h, 30d, 2w, or an ISO time")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create an API token (an admin token does this); the token is shown once."""
    body = {"name": name, "role": role.value, "owner_id": str(owner_id) if owner_id else None, "expires_in": expires_in}
    made = Ledger().call("POST", "/v1/tokens", json={k: v for k, v in body.items() if v is not None})
    emit(
        made,
        as_json,
        lambda: out.print(
            f"token {made['token_id']} created: {made['name']}, {made['role']}, owner {made['owner_id']}, "
            f"expires {made['expires_at'] or 'never'}.\ntoken (shown once): {made['token']}"
        ),
    )


@tokens_app.command("revoke")
@clean_errors
def tokens_revoke(token_id: UUID, yes: Yes = False, as_json: Json = False) -> None:
    """Revoke an API token: refused from now on, its console sessions end; asks first."""
    ledger = Ledger()
    token = next((t for t in ledger.call("GET", "/v1/tokens") if t["token_id"] == str(token_id)), None)
    if token is None:
        raise Failure(f"no token {token_id} (egis tokens list)")
    if token["revoked_at"] is None:
        ask(
            f"Revoke token {token['name']} ({token['role']}, {token_id})? Whoever holds it is refused from now on.", yes
        )
        token = ledger.call("DELETE", f"/v1/tokens/{token_id}")
    emit(
        token,
        as_json,
        lambda: out.print(
            f"token {token['name']} ({token_id}) "
            + ("revoked" if token.get("revoked_now") else f"was revoked already, at {token['revoked_at']}")
        ),
    )


# ---------------------------------------------------------------- repairs


def _repair(
    name: c.AdminCommandName, confirm: bool, bot_id: UUID | None, yes: bool, as_json: bool, timeout: float | None
) -> None:
    bootstrap = setting(KAFKA_ANCHOR, "Kafka's address; ./egis up writes it", KAFKA_ANCHOR)
    operator_id = setting("EGIS_OPERATOR_ID", "the operator you sign as", KAFKA_ANCHOR)
    key = setting("EGIS_OPERATOR_KEY", "your signing key (./egis operators add NAME makes one)", KAFKA_ANCHOR)
    if confirm:
        ask(
            f"Run {name.value} for real{f' for bot {bot_id}' if bot_id else ' for every bot'}? "
            "(without --confirm it is a dry run)",
            yes,
        )
    command = admin_client.signed(
        c.AdminCommand(
            request_id=uuid4(), command=name, confirm=confirm, bot_id=bot_id, operator_id=operator_id, signature=""
        ),
        key,
    )
    wait_s = (
        timeout
        if timeout is not None
        else admin_client.reply_timeout_s(
            name, float(os.environ.get("EGIS_ADMIN_MAX_COMMAND_SECONDS", admin_client.MAX_COMMAND_SECONDS))
        )
    )
    with Status(f"{name.value}: sent, waiting for the reconciler", console=err) as status:

        def waiting(seconds: float) -> None:
            status.update(f"{name.value}: waiting for the reconciler's reply, {seconds:.0f}s of at most {wait_s:.0f}s")

        try:
            reply = asyncio.run(
                admin_client.request(bootstrap, command, wait_s, client_options(_kafka_login()), waiting)
            )
        except Exception as error:  # Kafka unreachable or the login refused
            raise Failure(
                f"cannot reach Kafka at {bootstrap} as the operator: {_named(error)}", EXIT_UNAVAILABLE
            ) from None
    if reply is None:
        raise Failure(
            f"no reply within {wait_s:.0f}s (request {command.request_id}); is the reconciler up? ./egis status"
        )
    emit(reply.model_dump(mode="json"), as_json, lambda: render_reply(reply))
    if reply.status != "ok":
        raise typer.Exit(EXIT_FAILED)


def _named(error: Exception) -> str:
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}"


def _kafka_login() -> LoginSettings:
    """The operator's Kafka login, from where `setting` takes the rest."""
    if os.environ.get(KAFKA_ANCHOR):
        return LoginSettings()
    file = local_settings()
    return LoginSettings.model_validate(
        {n.removeprefix("EGIS_").lower(): v for n, v in file.items() if n.startswith("EGIS_KAFKA_")}
    )


def render_reply(reply: c.AdminReply) -> None:
    mode = "dry run" if reply.dry_run else "confirmed"
    out.print(f"{reply.command.value}: {reply.status} ({mode}), request {reply.request_id}")
    summary = {k: v for k, v in reply.report.items() if not isinstance(v, list)}
    if summary:
        out.print(
            table(
                None,
                ["", ""],
                [[k, json.dumps(v, default=str) if isinstance(v, dict) else v] for k, v in summary.items()],
            )
        )
    for name, lines in reply.report.items():
        if isinstance(lines, list) and lines:
            columns = [k for k in lines[0] if k != "backfill"]
            out.print(table(f"{name}: {len(lines)}", columns, [[line.get(k) for k in columns] for line in lines]))
        elif isinstance(lines, list):
            out.print(f"{name}: none")


def _repair_command(name: c.AdminCommandName, summary: str) -> None:
    @repair_app.command(name.value, help=summary)
    @clean_errors
    def run(
        confirm: Annotated[bool, typer.Option("--confirm", help="apply it (asks first); default: a dry run")] = False,
        bot_id: Annotated[UUID | None, typer.Option(help="one bot only")] = None,
        timeout: Annotated[
            float | None, typer.Option(help="seconds to wait for the reply (default: by command)")
        ] = None,
        yes: Yes = False,
        as_json: Json = False,
    ) -> None:
        _repair(name, confirm, bot_id, yes, as_json, timeout)


for _name, _summary in (
    (
        c.AdminCommandName.DRIFT_REPORT,
        "Positions whose facts disagree, and pending orders unresolved too long; changes nothing.",
    ),
    (c.AdminCommandName.RESOLVE_PENDING, "Look pending orders up on their venue and settle what is certain."),
    (c.AdminCommandName.SYNC_WRONG_CLOSED_POSITIONS, "Backfill closed positions' missing close facts."),
    (
        c.AdminCommandName.RECONCILE_PAPER_POSITIONS,
        "Sync Paper State: bring the paper venue's positions in line with the ledger's.",
    ),
):
    _repair_command(_name, _summary)


# ---------------------------------------------------------------- the local system


def _local(handler_name: str, **arguments: Any) -> None:
    from egis_localinfra import cli as local  # starts nothing on import; only the local commands need it

    try:
        code = local.run_command(getattr(local, handler_name), argparse.Namespace(**arguments))
    except SystemExit as refused:  # the local commands' own one-line refusals
        if not isinstance(refused.code, str):
            raise
        raise Failure(
            refused.code, EXIT_UNAVAILABLE if isinstance(refused, local.NotRunning) else EXIT_FAILED
        ) from None
    if code:
        raise typer.Exit(code)


@app.command()
@clean_errors
def up(as_json: Json = False) -> None:
    """Start what is missing, bring back what died, leave what is healthy alone."""
    _local("up", json=as_json)


@app.command()
@clean_errors
def down(as_json: Json = False) -> None:
    """Stop the services, Kafka and Postgres."""
    _local("down", json=as_json)


@app.command()
@clean_errors
def status(as_json: Json = False) -> None:
    """Does each component answer? Exits 0 when all do (Prometheus may be absent), 1 otherwise, stopped included."""
    _local("status", json=as_json)


@app.command()
@clean_errors
def restart(
    component: Annotated[str | None, typer.Argument(help="kafka, postgres or a service; none: all")] = None,
    as_json: Json = False,
) -> None:
    """Stop one component (or everything), then bring the system up."""
    _local("restart", component=component, json=as_json)


@app.command()
@clean_errors
def env(as_json: Json = False) -> None:
    """Print the running system's settings, for `source`."""
    _local("env", json=as_json)


@app.command("mark-price")
@clean_errors
def mark_price(symbol: str, price: str, as_json: Json = False) -> None:
    """A mark price for the paper venue, which fills market orders at it."""
    _local("mark_price", symbol=symbol, price=price, json=as_json)


@app.command()
@clean_errors
def operators(
    action: Annotated[str, typer.Argument(help="list, add, rotate or revoke")],
    name: Annotated[str | None, typer.Argument(help="the operator id (not for list)")] = None,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Operators' signing keys: list, add, rotate, revoke; no restart needed."""
    if action not in ("list", "add", "rotate", "revoke"):
        raise Failure(f"operators: unknown action {action!r}: list, add, rotate or revoke", EXIT_USAGE)
    _local("operators", action=action, name=name, yes=yes, json=as_json)


@app.command()
@clean_errors
def team(
    action: Annotated[str, typer.Argument(help="create or remove")], name: str, yes: Yes = False, as_json: Json = False
) -> None:
    """A read-only Kafka login for a team consuming Egis's public events, or its removal."""
    if action not in ("create", "remove"):
        raise Failure(f"team: unknown action {action!r}: create or remove", EXIT_USAGE)
    _local("team", action=action, name=name, yes=yes, json=as_json)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(context: typer.Context) -> None:
    """The test suite (pytest, with any pytest arguments); no --json of its own: its arguments are pytest's."""
    raise typer.Exit(subprocess.call([sys.executable, "-m", "pytest", *context.args]))


def _version(value: bool) -> None:
    if value:
        out.print(f"egis {version('egis-cli')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Egis's command line."""


from egis_cli import signals, trace  # noqa: E402 - they build on the helpers above

app.add_typer(signals.app, name="signals")
app.command("trace")(trace.trace)


def main() -> None:
    # An unreachable broker is reported in one line: aiokafka logs each failed connection on its own. asyncio
    # stays audible: the admin client stops its clients whatever fails, so a note about one left open is a bug.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    app()


if __name__ == "__main__":
    main()
