"""`egis-ledger-admin` as a person runs it: subprocesses against the test database and a real
HTTP server on loopback, asserting the printed output and the rows."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from egis_common.http_server import HttpServer
from egis_common.secrets import verify_token
from ledger import repository as repo
from ledger.adapters.http import create_http_app

pytestmark = pytest.mark.infra


@pytest.fixture
async def ledger_url(ledger_runtime):
    server = HttpServer(create_http_app(ledger_runtime), "127.0.0.1", 0)  # port 0: a free one
    await server.start()
    yield f"http://127.0.0.1:{server.port}"
    await server.stop()


async def cli(*args: str, **env: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop: the HTTP server it talks to runs in this loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ledger.cli",
        *args,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,  # no terminal, whoever runs the tests: a question is never answered
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


def printed(name: str, text: str) -> str:
    return re.search(rf"^{name}:?\s+(\S+)$", text, re.MULTILINE).group(1)


async def create_token(ledger_runtime, *args: str) -> dict[str, str]:
    code, out, _ = await cli("create-token", *args)
    assert code == 0, out
    issued = {name: printed(name, out) for name in ("token_id", "role", "owner_id", "token")} | {"printed": out}
    async with ledger_runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(repo.api_tokens).where(repo.api_tokens.c.token_id == uuid.UUID(issued["token_id"]))
            )
        ).one()
    assert (row.role, str(row.owner_id), row.revoked_at) == (issued["role"], issued["owner_id"], None)
    assert verify_token(issued["token"], row.token_hash) and issued["token"] not in (row.token_hash, row.lookup_key)
    return issued


async def test_tokens_from_the_database_and_bots_through_the_api(ledger_runtime, ledger_url):
    owner = str(uuid.uuid4())
    token = await create_token(ledger_runtime, "--role", "user", "--owner-id", owner, "--name", "cli test")
    assert token["token"].startswith("egt_") and token["owner_id"] == owner
    env = {"EGIS_LEDGER_URL": ledger_url, "EGIS_LEDGER_TOKEN": token["token"]}
    key = f"cli-{uuid.uuid4().hex}"

    code, out, err = await cli(
        "bots",
        "create",
        "--name",
        "cli bot",
        "--signal-key",
        key,
        "--exchange",
        "paper",
        "--exchange-account",
        "acct-cli",
        "--initial-budget-usd",
        "250.75",
        "--default-order-size-usd",
        "12.5",
        **env,
    )
    assert code == 0, err
    bot_id, secret = printed("bot_id", out), printed("webhook_secret", out)
    assert secret.startswith("whk_") and printed("initial_budget_usd", out) == "250.75"
    async with ledger_runtime.engine.connect() as conn:
        row = await repo.bot_row(conn, uuid.UUID(bot_id))
    assert (row.signal_key, str(row.owner_id), row.initial_budget_usd) == (key, owner, Decimal("250.75"))
    assert verify_token(secret, row.webhook_secret_hash)

    code, out, _ = await cli("bots", "list", "--json", **env)
    assert code == 0 and [b["bot_id"] for b in json.loads(out)] == [bot_id]
    code, out, _ = await cli("bots", "list", **env)  # a table: title, borders, header, a line per bot
    (line,) = [line for line in out.splitlines() if bot_id in line]
    assert code == 0 and len(out.splitlines()) == 6 and "cli bot" in line and "250.75" in line and "acct-cli" in line
    code, out, _ = await cli("bots", "positions", bot_id, **env)
    assert code == 0 and f"positions of bot {bot_id}" in out and "requested_size_usd" in out
    assert secret not in out and "webhook_secret" not in out
    code, out, _ = await cli("bots", "budget", bot_id, **env)
    assert code == 0
    assert {name: printed(name, out) for name in ("initial_usd", "reserved_opening_usd", "available_usd")} == {
        "initial_usd": "250.75",
        "reserved_opening_usd": "0",
        "available_usd": "250.75",
    }


async def test_a_refusal_is_printed_and_a_revoked_token_stops_working(ledger_runtime, ledger_url):
    token = await create_token(ledger_runtime, "--role", "admin", "--name", "cli admin")
    env = {"EGIS_LEDGER_URL": ledger_url, "EGIS_LEDGER_TOKEN": token["token"]}
    code, _, err = await cli("bots", "budget", str(uuid.uuid4()), **env)
    assert code == 1 and "404" in err and "bot_not_found" in err
    code, out, _ = await cli("revoke-token", token["token_id"])
    assert code == 0 and f"revoked {token['token_id']}" in out
    async with ledger_runtime.engine.connect() as conn:
        revoked_at = await conn.scalar(
            sa.select(repo.api_tokens.c.revoked_at).where(repo.api_tokens.c.token_id == uuid.UUID(token["token_id"]))
        )
    assert revoked_at is not None
    code, _, err = await cli("bots", "list", **env)
    assert code == 1 and "401" in err and "unauthorized" in err
    assert token["token"] not in err


async def test_bot_stop_percentages_are_set_and_removed_from_the_command_line(ledger_runtime, ledger_url):
    token = await create_token(ledger_runtime, "--role", "user", "--name", "cli percentages")
    env = {"EGIS_LEDGER_URL": ledger_url, "EGIS_LEDGER_TOKEN": token["token"]}
    code, out, err = await cli(
        "bots",
        "create",
        "--name",
        "pct bot",
        "--signal-key",
        f"cli-{uuid.uuid4().hex}",
        "--exchange",
        "paper",
        "--exchange-account",
        f"acct-{uuid.uuid4().hex[:8]}",
        "--initial-budget-usd",
        "100",
        "--default-order-size-usd",
        "10",
        "--take-profit-pct",
        "2",
        "--stop-loss-pct",
        "1",
        **env,
    )
    assert code == 0, err
    bot_id = uuid.UUID(printed("bot_id", out))
    assert (printed("take_profit_pct", out), printed("stop_loss_pct", out)) == ("2", "1")
    code, out, err = await cli(
        "bots", "edit", str(bot_id), "--take-profit-pct", "none", "--stop-loss-pct", "0.5", "--json", **env
    )
    assert code == 0, err
    assert (json.loads(out)["take_profit_pct"], json.loads(out)["stop_loss_pct"]) == (None, "0.5")
    code, _, err = await cli("bots", "edit", str(bot_id), "--stop-loss-pct", "0", **env)
    assert code == 1 and "422" in err
    async with ledger_runtime.engine.connect() as conn:
        row = await repo.bot_row(conn, bot_id)
    assert (row.take_profit_pct, row.stop_loss_pct, row.version) == (None, Decimal("0.5"), 2)


async def test_a_viewer_token_with_an_expiry_is_listed_without_its_secret_and_audited(ledger_runtime):
    name = f"grafana-{uuid.uuid4().hex[:6]}"
    token = await create_token(ledger_runtime, "--role", "viewer", "--name", name, "--expires-in", "30d")
    assert printed("expires_at", token["printed"]) != "never"
    code, out, err = await cli("tokens", "list")
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if token["token_id"] in line]
    assert name in line and "viewer" in line and token["token"] not in out
    code, out, _ = await cli("tokens", "list", "--json")
    (listed,) = [t for t in json.loads(out) if t["token_id"] == token["token_id"]]
    assert set(listed) == {
        "token_id",
        "name",
        "role",
        "owner_id",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    expires_in = datetime.fromisoformat(listed["expires_at"]) - datetime.fromisoformat(listed["created_at"])
    assert timedelta(days=30) - timedelta(minutes=1) < expires_in <= timedelta(days=30)
    async with ledger_runtime.engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.select(repo.api_tokens).where(repo.api_tokens.c.token_id == uuid.UUID(token["token_id"]))
            )
        ).one()
    assert stored.token_hash not in out and stored.lookup_key not in out

    assert (await cli("revoke-token", token["token_id"]))[0] == 0
    code, out, err = await cli("audit", "list", "--limit", "2")
    assert code == 0, err
    lines = [line for line in out.splitlines() if token["token_id"] in line]
    assert [("token.revoke" in line, "token.create" in line) for line in lines] == [(True, False), (False, True)]
    assert all(" cli " in line for line in lines) and "revoked_at: None ->" in lines[0]


@pytest.mark.parametrize("expires_in", ["yesterday", "0d", "2000-01-01T00:00:00Z"])
async def test_an_expiry_that_is_not_one_or_is_past_creates_no_token(ledger_runtime, expires_in):
    name = f"never-{uuid.uuid4().hex[:6]}"
    code, out, err = await cli("create-token", "--role", "user", "--name", name, "--expires-in", expires_in)
    assert code == 2 and "--expires-in" in err and "token:" not in out
    async with ledger_runtime.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).where(repo.api_tokens.c.name == name)) == 0


async def test_a_delete_asks_first_and_goes_ahead_only_on_a_yes(ledger_runtime, ledger_url):
    token = await create_token(ledger_runtime, "--role", "user", "--name", "cli delete")
    env = {"EGIS_LEDGER_URL": ledger_url, "EGIS_LEDGER_TOKEN": token["token"]}
    code, out, err = await cli(
        "bots",
        "create",
        "--name",
        "doomed bot",
        "--signal-key",
        f"cli-{uuid.uuid4().hex}",
        "--exchange",
        "paper",
        "--exchange-account",
        f"acct-{uuid.uuid4().hex[:8]}",
        "--initial-budget-usd",
        "100",
        "--default-order-size-usd",
        "10",
        "--json",
        **env,
    )
    assert code == 0, err
    bot_id = uuid.UUID(json.loads(out)["bot_id"])

    code, out, err = await cli("bots", "delete", str(bot_id), **env)  # stdin is no terminal: nobody to ask
    assert (code, out) == (1, "") and err.strip().endswith(
        "not confirmed (no terminal to ask on): pass --yes to go ahead"
    )
    async with ledger_runtime.engine.connect() as conn:
        assert (await repo.bot_row(conn, bot_id)).deleted_at is None

    code, out, err = await cli("bots", "delete", str(bot_id), "--yes", "--json", **env)
    assert code == 0 and json.loads(out) == {"deleted": str(bot_id)}, err
    async with ledger_runtime.engine.connect() as conn:
        assert (await repo.bot_row(conn, bot_id)).deleted_at is not None
