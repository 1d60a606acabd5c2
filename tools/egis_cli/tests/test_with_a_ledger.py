"""`egis bots` and `egis tokens` against a real ledger: its management API on loopback, over real Postgres and Kafka."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import clean_env, egis, one_line_error, table_rows  # noqa: E402

from egis_common.http_server import HttpServer  # noqa: E402
from ledger import auth  # noqa: E402
from ledger import repository as repo  # noqa: E402
from ledger.adapters.http import create_http_app  # noqa: E402

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def ledger_url(ledger_runtime):
    server = HttpServer(create_http_app(ledger_runtime), "127.0.0.1", 0)
    await server.start()
    yield f"http://127.0.0.1:{server.port}"
    await server.stop()


async def new_token(runtime, role: str = "admin", owner_id: uuid.UUID | None = None) -> auth.IssuedToken:
    async with runtime.engine.begin() as conn:
        return await auth.create_token(conn, auth.Role(role), owner_id or uuid.uuid4(), f"{role} for egis tests")


@pytest.fixture
async def admin_env(ledger_runtime, ledger_url, tmp_path):
    token = await new_token(ledger_runtime)
    return clean_env(tmp_path, EGIS_LEDGER_URL=ledger_url, EGIS_LEDGER_TOKEN=token.token)


async def create_bot(env, name: str | None = None) -> dict:
    name = name or f"bot-{uuid.uuid4().hex[:8]}"
    done = await egis(
        *("bots", "create", "--name", name, "--signal-key", f"key-{uuid.uuid4().hex}"),
        *("--exchange-account", f"acct-{name}", "--initial-budget-usd", "100", "--default-order-size-usd", "10"),
        *("--take-profit-pct", "2.5", "--json"),
        env=env,
    )
    assert done.code == 0, done
    return json.loads(done.out)


async def bot_row(runtime, bot_id: str) -> sa.Row:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(sa.select(repo.bots).where(repo.bots.c.bot_id == uuid.UUID(bot_id)))).one()


async def token_row(runtime, token_id: str) -> sa.Row:
    async with runtime.engine.connect() as conn:
        query = sa.select(repo.api_tokens).where(repo.api_tokens.c.token_id == uuid.UUID(token_id))
        return (await conn.execute(query)).one()


async def test_bots_create_and_show_as_json(ledger_runtime, admin_env):
    bot = await create_bot(admin_env, "eth-trend")
    assert bot["name"] == "eth-trend" and bot["webhook_secret"].startswith("whk_") and bot["take_profit_pct"] == "2.5"
    row = await bot_row(ledger_runtime, bot["bot_id"])
    assert (row.name, str(row.initial_budget_usd), row.deleted_at) == ("eth-trend", "100", None)
    done = await egis("bots", "show", bot["bot_id"], "--json", env=admin_env)
    assert done.code == 0, done
    shown = json.loads(done.out)
    assert shown["bot"]["bot_id"] == bot["bot_id"] and "webhook_secret" not in shown["bot"]
    assert (shown["budget"]["initial_usd"], shown["budget"]["available_usd"], shown["positions"]) == ("100", "100", [])


async def test_bots_list_is_a_table_of_one_line_per_bot_and_json_on_request(admin_env):
    bots = [await create_bot(admin_env), await create_bot(admin_env)]
    done = await egis("bots", "list", env=admin_env)
    assert done.code == 0, done
    header, *rows = table_rows(done.out)
    assert header == ["bot", "name", "status", "exchange", "account", "budget", "order size"]
    listed = {row[0]: row for row in rows}
    for bot in bots:
        assert listed[bot["bot_id"]] == [bot["bot_id"], bot["name"], "live", "paper", bot["exchange_account"]] + [
            "100",
            "10",
        ]
    assert len(done.out.splitlines()) == len(rows) + 4  # the borders and the header: one line per bot
    as_json = await egis("bots", "list", "--json", env=admin_env)
    assert {b["bot_id"] for b in bots} <= {b["bot_id"] for b in json.loads(as_json.out)}
    assert set(json.loads(as_json.out)[0]) >= {"bot_id", "name", "paused", "exchange", "initial_budget_usd"}


async def test_bots_delete_asks_and_does_nothing_on_no(ledger_runtime, admin_env):
    bot = await create_bot(admin_env)
    no = await egis("bots", "delete", bot["bot_id"], env=admin_env, answer="n")
    assert "Delete bot" in no.out and "nothing changed" in one_line_error(no, 1)
    unasked = await egis("bots", "delete", bot["bot_id"], env=admin_env)  # no terminal to ask on
    assert "pass --yes" in one_line_error(unasked, 1)
    assert (await bot_row(ledger_runtime, bot["bot_id"])).deleted_at is None
    yes = await egis("bots", "delete", bot["bot_id"], env=admin_env, answer="y")
    assert yes.code == 0 and "deleted" in yes.out, yes
    assert (await bot_row(ledger_runtime, bot["bot_id"])).deleted_at is not None


async def test_bots_delete_with_yes_acts_without_asking(ledger_runtime, admin_env):
    bot = await create_bot(admin_env)
    done = await egis("bots", "delete", bot["bot_id"], "--yes", "--json", env=admin_env)
    assert done.code == 0, done
    assert json.loads(done.out) == {"bot_id": bot["bot_id"], "deleted": True}
    assert (await bot_row(ledger_runtime, bot["bot_id"])).deleted_at is not None


async def test_bots_edit_changes_only_what_is_given_and_none_removes_a_percentage(ledger_runtime, admin_env):
    bot = await create_bot(admin_env)
    done = await egis(
        *("bots", "edit", bot["bot_id"], "--name", "renamed", "--take-profit-pct", "none", "--stop-loss-pct", "1.5"),
        env=admin_env,
    )
    assert done.code == 0, done
    assert done.out.strip() == "renamed (live) changed: name renamed, take_profit_pct none, stop_loss_pct 1.5"
    row = await bot_row(ledger_runtime, bot["bot_id"])
    assert (row.name, row.take_profit_pct, str(row.stop_loss_pct), str(row.initial_budget_usd)) == (
        "renamed",
        None,
        "1.5",
        "100",
    )
    as_json = await egis("bots", "edit", bot["bot_id"], "--default-order-size-usd", "12.5", "--json", env=admin_env)
    assert as_json.code == 0 and json.loads(as_json.out)["default_order_size_usd"] == "12.5", as_json
    refused = await egis("bots", "edit", bot["bot_id"], "--initial-budget-usd", "-1", env=admin_env)
    assert "422" in one_line_error(refused, 1)
    nothing = await egis("bots", "edit", bot["bot_id"], env=admin_env)
    assert "nothing to change" in one_line_error(nothing, 2)


async def test_pause_and_resume(ledger_runtime, admin_env):
    bot = await create_bot(admin_env)
    paused = await egis("bots", "pause", bot["bot_id"], "--json", env=admin_env)
    assert paused.code == 0 and json.loads(paused.out)["paused"] is True
    assert (await bot_row(ledger_runtime, bot["bot_id"])).paused
    resumed = await egis("bots", "resume", bot["bot_id"], env=admin_env)
    assert resumed.code == 0 and resumed.out.strip() == f"{bot['name']} is live"
    assert not (await bot_row(ledger_runtime, bot["bot_id"])).paused


async def test_a_refusal_by_the_api_is_one_line_and_exit_1(ledger_runtime, ledger_url, tmp_path, admin_env):
    user = await new_token(ledger_runtime, "user")
    env = clean_env(tmp_path, EGIS_LEDGER_URL=ledger_url, EGIS_LEDGER_TOKEN=user.token)
    assert "403 an admin token is required" in one_line_error(await egis("tokens", "list", env=env), 1)
    missing = await egis("bots", "show", str(uuid.uuid4()), env=admin_env)
    assert "404" in one_line_error(missing, 1)
    wrong = clean_env(tmp_path, EGIS_LEDGER_URL=ledger_url, EGIS_LEDGER_TOKEN="egt_not_a_token")
    assert "401" in one_line_error(await egis("bots", "list", "--json", env=wrong), 1)


async def test_tokens_create_shows_the_token_once_and_it_works(ledger_runtime, ledger_url, admin_env):
    owner = str(uuid.uuid4())
    done = await egis(
        *("tokens", "create", "--name", "alice", "--role", "user", "--owner-id", owner, "--expires-in", "30d"),
        "--json",
        env=admin_env,
    )
    assert done.code == 0, done
    made = json.loads(done.out)
    assert (made["name"], made["role"], made["owner_id"]) == ("alice", "user", owner)
    assert made["token"].startswith("egt_") and made["expires_at"] is not None
    row = await token_row(ledger_runtime, made["token_id"])
    assert (row.role, str(row.owner_id), row.revoked_at) == ("user", owner, None)
    async with httpx.AsyncClient(base_url=ledger_url) as client:
        answer = await client.get("/v1/bots", headers={"Authorization": f"Bearer {made['token']}"})
    assert answer.status_code == 200
    text = await egis("tokens", "create", "--name", "bob", "--role", "admin", env=admin_env)
    assert text.code == 0 and "token (shown once): egt_" in text.out, text
    viewer = await egis("tokens", "create", "--name", "v", "--role", "viewer", env=admin_env)
    assert "422" in one_line_error(viewer, 1) and "owner_id" in viewer.err


async def test_tokens_list_is_a_table_without_secrets(ledger_runtime, admin_env):
    made = json.loads((await egis("tokens", "create", "--name", "ci", "--role", "user", "--json", env=admin_env)).out)
    done = await egis("tokens", "list", env=admin_env)
    assert done.code == 0, done
    header, *rows = table_rows(done.out)
    assert header == ["token", "name", "role", "owner", "created", "last used", "expires", "revoked"]
    assert [made["token_id"], "ci", "user", made["owner_id"]] in [row[:4] for row in rows]
    assert made["token"] not in done.out
    listed = json.loads((await egis("tokens", "list", "--json", env=admin_env)).out)
    assert {t["token_id"] for t in listed} >= {made["token_id"]} and made["token"] not in json.dumps(listed)


async def test_tokens_revoke_asks_and_does_nothing_on_no_then_revokes_with_yes(ledger_runtime, ledger_url, admin_env):
    made = json.loads((await egis("tokens", "create", "--name", "old", "--role", "user", "--json", env=admin_env)).out)
    no = await egis("tokens", "revoke", made["token_id"], env=admin_env, answer="n")
    assert "Revoke token old" in no.out and "nothing changed" in one_line_error(no, 1)
    assert (await token_row(ledger_runtime, made["token_id"])).revoked_at is None
    done = await egis("tokens", "revoke", made["token_id"], "--yes", "--json", env=admin_env)
    assert done.code == 0, done
    revoked = json.loads(done.out)
    assert revoked["revoked_now"] is True and revoked["revoked_at"] is not None
    assert (await token_row(ledger_runtime, made["token_id"])).revoked_at is not None
    async with httpx.AsyncClient(base_url=ledger_url) as client:
        answer = await client.get("/v1/bots", headers={"Authorization": f"Bearer {made['token']}"})
    assert answer.status_code == 401
    again = await egis("tokens", "revoke", made["token_id"], env=admin_env)  # nothing to ask: nothing changes
    assert again.code == 0 and "was revoked already" in again.out, again
    unknown = await egis("tokens", "revoke", str(uuid.uuid4()), "--yes", env=admin_env)
    assert "no token" in one_line_error(unknown, 1)
